/* check_ring.c - mpscq_ring: the contract of issue 12 between threads and
 * between processes (fork), stopped and dead producers, the sleeping
 * consumer, attach checks and a corrupted region. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mpscq.h"
#include "internal.h"
#include "arch.h"
#include "ring.h"
#include "testutil.h"
#include "dispatch.h"

/* Forked children: not where the suites run unforked (qemu-user, TSan:
 * a forked multi-threaded emulated process may hang). */
static int fork_ok(void)
{
    const char *f = getenv("CK_FORK");
    return !(f && strcmp(f, "no") == 0);
}

/* A unique shared-memory name for this process and test. */
static void ring_name(char *buf, size_t n, const char *tag)
{
    snprintf(buf, n, "/mpscq-test-%d-%s", (int)getpid(), tag);
}

static mpscq_ring_t *new_ring(size_t bytes, size_t max_message)
{
    mpscq_ring_config cfg;
    mpscq_ring_config_init(&cfg);
    cfg.bytes = bytes;
    cfg.max_message = max_message;
    mpscq_ring_t *r = NULL;
    ck_assert_int_eq(mpscq_ring_create(&r, NULL, &cfg), MPSCQ_OK);
    ck_assert_ptr_nonnull(r);
    return r;
}

/* A message: producer, sequence, then `len` bytes in all, filled with a
 * pattern of both, so that a torn or misplaced copy is seen. */
struct msg_head {
    uint32_t producer;
    uint32_t seq;
};
static size_t msg_len(uint32_t p, uint32_t seq, size_t maxlen)
{
    return sizeof(struct msg_head) + (p * 7919u + seq * 104729u) % (maxlen - sizeof(struct msg_head) + 1);
}
static void msg_fill(uint8_t *b, uint32_t p, uint32_t seq, size_t len)
{
    struct msg_head h = { p, seq };
    memcpy(b, &h, sizeof h);
    for (size_t i = sizeof h; i < len; i++)
        b[i] = (uint8_t)(p * 31 + seq + i);
}
static int msg_check(const uint8_t *b, size_t len, size_t maxlen, struct msg_head *out)
{
    if (len < sizeof *out)
        return 0;
    memcpy(out, b, sizeof *out);
    if (len != msg_len(out->producer, out->seq, maxlen))
        return 0;
    for (size_t i = sizeof *out; i < len; i++)
        if (b[i] != (uint8_t)(out->producer * 31 + out->seq + i))
            return 0;
    return 1;
}

/* Write, retrying while FULL (another thread or process drains). */
static int write_retry(mpscq_ring_t *r, const void *b, size_t len)
{
    int rc;
    while ((rc = mpscq_ring_write(r, b, len)) == MPSCQ_FULL)
        sched_yield();
    return rc;
}

/* ---- arguments and limits ------------------------------------------------- */

START_TEST(test_config_and_args)
{
    mpscq_ring_config cfg;
    memset(&cfg, 0xff, sizeof cfg);
    mpscq_ring_config_init(&cfg);
    ck_assert_uint_eq(cfg.bytes, 0);
    ck_assert_uint_eq(cfg.max_message, 0);
    ck_assert_uint_eq(cfg.mode, 0);
    mpscq_ring_config_init(NULL);

    mpscq_ring_t *r = (mpscq_ring_t *)&cfg;
    ck_assert_int_eq(mpscq_ring_create(NULL, NULL, NULL), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_create(&r, "noslash", NULL), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_create(&r, "/a/b", NULL), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_create(&r, "/", NULL), MPSCQ_INVAL);
    cfg.max_message = MPSCQ_RING_MAX_MESSAGE_MAX + 1;
    ck_assert_int_eq(mpscq_ring_create(&r, NULL, &cfg), MPSCQ_INVAL);
    cfg.max_message = 0;
    cfg.bytes = MPSCQ_RING_BYTES_MAX + 1;
    ck_assert_int_eq(mpscq_ring_create(&r, NULL, &cfg), MPSCQ_INVAL);
    cfg.bytes = 4096;
    cfg.max_message = 1 << 20;  /* far more than a 4 KiB ring holds */
    ck_assert_int_eq(mpscq_ring_create(&r, NULL, &cfg), MPSCQ_INVAL);
    cfg.max_message = 0;
    cfg.mode = 01777;
    ck_assert_int_eq(mpscq_ring_create(&r, NULL, &cfg), MPSCQ_INVAL);
    ck_assert_ptr_eq(r, (mpscq_ring_t *)&cfg);   /* untouched on failure */

    ck_assert_int_eq(mpscq_ring_open(&r, "/mpscq-test-no-such-ring"), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_open(NULL, "/x"), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_open(&r, NULL), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_open_fd(&r, -1), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_unlink("/mpscq-test-no-such-ring"), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_unlink("bad"), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_fd(NULL), -1);

    ck_assert_int_eq(mpscq_ring_create(&r, NULL, NULL), MPSCQ_OK);
    ck_assert_int_ge(mpscq_ring_fd(r), 0);
    char b[8] = "x";
    void *buf;
    size_t len;
    ck_assert_int_eq(mpscq_ring_write(r, NULL, 1), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_write(r, b, 0), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_write(NULL, b, 1), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_reserve(r, 1, NULL), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_reserve(NULL, 1, &buf), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_commit(r, NULL), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_commit(r, b), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_read(r, NULL, 8, &len), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_read(r, b, 8, NULL), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_read(NULL, b, 8, &len), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_read_wait(NULL, b, 8, &len, 0), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_read(r, b, 8, &len), MPSCQ_EMPTY);
    mpscq_ring_close(NULL);
    mpscq_ring_detach(NULL);
    mpscq_ring_detach(r);
}
END_TEST

START_TEST(test_roundtrip_every_size)
{
    const size_t maxm = 700;
    mpscq_ring_t *r = new_ring(64 * 1024, maxm);
    uint8_t in[700], out[700 + 16];
    for (size_t len = 1; len <= maxm; len++) {
        for (size_t i = 0; i < len; i++)
            in[i] = (uint8_t)(len + i * 13);
        ck_assert_int_eq(mpscq_ring_write(r, in, len), MPSCQ_OK);
        size_t got = 0;
        memset(out, 0xaa, sizeof out);
        ck_assert_int_eq(mpscq_ring_read(r, out, len, &got), MPSCQ_OK);
        ck_assert_uint_eq(got, len);
        ck_assert_int_eq(memcmp(in, out, len), 0);
        ck_assert_uint_eq(out[len], 0xaa);   /* never written past */
    }
    size_t got;
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &got), MPSCQ_EMPTY);
    mpscq_ring_detach(r);
}
END_TEST

START_TEST(test_max_message_exact)
{
    static uint8_t big[MPSCQ_RING_MAX_MESSAGE_DEFAULT + 1];
    void *buf;
    size_t len;
    mpscq_ring_t *r = new_ring(16384, 700);
    ck_assert_int_eq(mpscq_ring_write(r, big, 700), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_write(r, big, 701), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_reserve(r, 701, &buf), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_reserve(r, 700, &buf), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_commit(r, buf), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_read(r, big, sizeof big, &len), MPSCQ_OK);
    ck_assert_uint_eq(len, 700);
    ck_assert_int_eq(mpscq_ring_read(r, big, sizeof big, &len), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_read(r, big, sizeof big, &len), MPSCQ_EMPTY);
    mpscq_ring_detach(r);

    /* The default: at least 512 bytes, exact. */
    ck_assert_uint_ge(MPSCQ_RING_MAX_MESSAGE_DEFAULT, 512);
    r = new_ring(0, 0);
    ck_assert_int_eq(mpscq_ring_write(r, big, MPSCQ_RING_MAX_MESSAGE_DEFAULT), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_write(r, big, MPSCQ_RING_MAX_MESSAGE_DEFAULT + 1), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_read(r, big, sizeof big, &len), MPSCQ_OK);
    ck_assert_uint_eq(len, MPSCQ_RING_MAX_MESSAGE_DEFAULT);
    mpscq_ring_detach(r);
}
END_TEST

START_TEST(test_small_buffer_keeps_message)
{
    mpscq_ring_t *r = new_ring(16384, 0);
    uint8_t in[100], out[101];
    for (int i = 0; i < 100; i++)
        in[i] = (uint8_t)i;
    ck_assert_int_eq(mpscq_ring_write(r, in, 100), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_write(r, in, 5), MPSCQ_OK);
    size_t len = 0;
    memset(out, 0x5c, sizeof out);
    ck_assert_int_eq(mpscq_ring_read(r, out, 99, &len), MPSCQ_INVAL);
    ck_assert_uint_eq(len, 100);
    ck_assert_uint_eq(out[0], 0x5c);
    ck_assert_int_eq(mpscq_ring_read_wait(r, out, 10, &len, 0), MPSCQ_INVAL);
    /* Exactly its size is enough, and nothing past it is written. */
    ck_assert_int_eq(mpscq_ring_read(r, out, 100, &len), MPSCQ_OK);
    ck_assert_uint_eq(len, 100);
    ck_assert_int_eq(memcmp(in, out, 100), 0);
    ck_assert_uint_eq(out[100], 0x5c);
    ck_assert_int_eq(mpscq_ring_read(r, out, 5, &len), MPSCQ_OK);
    ck_assert_uint_eq(len, 5);
    mpscq_ring_detach(r);
}
END_TEST

/* Fill with 100-byte messages until FULL; the count. */
static unsigned fill_100(mpscq_ring_t *r)
{
    uint8_t m[100] = { 0 };
    unsigned n = 0;
    int rc;
    while ((rc = mpscq_ring_write(r, m, sizeof m)) == MPSCQ_OK)
        n++;
    ck_assert_int_eq(rc, MPSCQ_FULL);
    return n;
}
static unsigned drain(mpscq_ring_t *r)
{
    uint8_t b[MPSCQ_RING_MAX_MESSAGE_DEFAULT];
    size_t len;
    unsigned n = 0;
    int rc;
    while ((rc = mpscq_ring_read(r, b, sizeof b, &len)) == MPSCQ_OK)
        n++;
    ck_assert_int_eq(rc, MPSCQ_EMPTY);
    return n;
}

/* A 64 KiB ring filled with 100-byte messages once and drained (so the
 * next chunks are recycled ones); *cap, how many it held. */
static mpscq_ring_t *lapped_ring(unsigned *cap)
{
    mpscq_ring_t *r = new_ring(65536, 0);
    *cap = fill_100(r);
    ck_assert_uint_eq(drain(r), *cap);
    return r;
}

/* The ring holds, from empty, at least 7/8 of `cap` 100-byte messages
 * (its capacity came back) and gives them all back. */
static void capacity_back(mpscq_ring_t *r, unsigned cap)
{
    unsigned again = fill_100(r);
    ck_assert_uint_ge(again, cap - cap / 8);
    ck_assert_uint_eq(drain(r), again);
}

START_TEST(test_capacity_100_byte_messages)
{
    static const size_t sizes[] = { 1, 4096, 65536, 1 << 20 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        mpscq_ring_t *r = new_ring(sizes[i], 0);
        size_t bytes = (sizes[i] + 4095) / 4096 * 4096;
        unsigned n = fill_100(r);
        ck_assert_uint_ge((size_t)n * 100, bytes / 4);
        uint8_t m[100] = { 0 };
        ck_assert_int_eq(mpscq_ring_write(r, m, 100), MPSCQ_FULL);  /* at once, again */
        ck_assert_uint_eq(drain(r), n);
        /* The whole capacity comes back, lap after lap. */
        for (int lap = 0; lap < 3; lap++)
            capacity_back(r, n);
        mpscq_ring_detach(r);
    }
}
END_TEST

/* ---- claims ---------------------------------------------------------------- */

START_TEST(test_uncommitted_claim_invisible)
{
    mpscq_ring_t *r = new_ring(16384, 0);
    void *buf, *buf2;
    size_t len;
    uint8_t out[64];
    ck_assert_int_eq(mpscq_ring_reserve(r, 10, &buf), MPSCQ_OK);
    memcpy(buf, "0123456789", 10);
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_EMPTY);
    ck_assert_int_eq(mpscq_ring_read_wait(r, out, sizeof out, &len, 0), MPSCQ_EMPTY);
    /* One claim open per thread. */
    ck_assert_int_eq(mpscq_ring_reserve(r, 10, &buf2), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_write(r, "x", 1), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_commit(r, (char *)buf + 16), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_commit(r, buf), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_commit(r, buf), MPSCQ_INVAL);   /* no longer open */
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
    ck_assert_uint_eq(len, 10);
    ck_assert_int_eq(memcmp(out, "0123456789", 10), 0);
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_EMPTY);
    mpscq_ring_detach(r);
}
END_TEST

/* A thread that reserves, says so (reserved = 1), commits only when
 * told, and says so (reserved = 2). */
struct holder {
    mpscq_ring_t *r;
    size_t len;
    _Atomic int reserved, go;
    int rc;
};
static void *holder_main(void *arg)
{
    struct holder *h = arg;
    void *buf;
    h->rc = mpscq_ring_reserve(h->r, h->len, &buf);
    if (h->rc == MPSCQ_OK)
        memset(buf, 'H', h->len);
    atomic_store(&h->reserved, 1);
    while (!atomic_load(&h->go))
        sched_yield();
    if (h->rc == MPSCQ_OK)
        h->rc = mpscq_ring_commit(h->r, buf);
    atomic_store(&h->reserved, 2);
    return NULL;
}

/* Start a holder on its own thread; back once its claim is open. */
static void holder_start(struct holder *h, pthread_t *t)
{
    MPSCQ_HG_ATOMIC(h, sizeof *h);   /* the test's flags: C11 atomics */
    ck_assert_int_eq(pthread_create(t, NULL, holder_main, h), 0);
    while (!atomic_load(&h->reserved))
        sched_yield();
    ck_assert_int_eq(h->rc, MPSCQ_OK);
}
/* Let it commit, join it, check its commit. */
static void holder_finish(struct holder *h, pthread_t t)
{
    atomic_store(&h->go, 1);
    pthread_join(t, NULL);
    ck_assert_int_eq(h->rc, MPSCQ_OK);
}

/* Push `laps` capacities of 100-byte messages through r, draining as it
 * fills; every message read must be one of ours (no 'H'). */
static void push_through(mpscq_ring_t *r, unsigned per_lap, unsigned laps)
{
    uint8_t m[100], out[MPSCQ_RING_MAX_MESSAGE_DEFAULT];
    size_t len;
    unsigned sent = 0, got = 0;
    while (sent < per_lap * laps) {
        memset(m, 'a' + sent % 26, sizeof m);
        int rc = mpscq_ring_write(r, m, sizeof m);
        if (rc == MPSCQ_OK) {
            sent++;
            continue;
        }
        ck_assert_int_eq(rc, MPSCQ_FULL);
        int before = got;
        while (mpscq_ring_read(r, out, sizeof out, &len) == MPSCQ_OK) {
            ck_assert_uint_eq(len, 100);
            ck_assert_uint_ne(out[0], 'H');
            got++;
        }
        ck_assert_int_gt((int)got, before);   /* FULL only when something was queued */
    }
    while (mpscq_ring_read(r, out, sizeof out, &len) == MPSCQ_OK) {
        ck_assert_uint_ne(out[0], 'H');
        got++;
    }
    ck_assert_uint_eq(got, sent);
}

START_TEST(test_consumer_passes_open_claim)
{
    unsigned cap;
    mpscq_ring_t *r = lapped_ring(&cap);
    struct holder h = { .r = r, .len = 300 };
    pthread_t t;
    holder_start(&h, &t);
    /* Everything written after the open claim is delivered, through three
     * capacities of the ring: the claim pins its chunk, not the ring. */
    push_through(r, cap, 3);
    holder_finish(&h, t);
    uint8_t out[MPSCQ_RING_MAX_MESSAGE_DEFAULT];
    size_t len;
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
    ck_assert_uint_eq(len, 300);
    ck_assert_uint_eq(out[0], 'H');
    ck_assert_uint_eq(out[299], 'H');
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_EMPTY);
    /* The pinned chunk came back. */
    capacity_back(r, cap);
    mpscq_ring_detach(r);
}
END_TEST

/* Per-producer order across a passed claim: a thread's second message,
 * written after its first committed late, is delivered after it. */
START_TEST(test_order_after_passed_claim)
{
    mpscq_ring_t *r = new_ring(65536, 0);
    struct holder h = { .r = r, .len = 40 };
    pthread_t t;
    holder_start(&h, &t);
    ck_assert_int_eq(mpscq_ring_write(r, "after", 5), MPSCQ_OK);
    uint8_t out[64];
    size_t len;
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);   /* passes H */
    ck_assert_uint_eq(len, 5);
    holder_finish(&h, t);
    /* The main thread now writes two more; H (committed first) comes first. */
    ck_assert_int_eq(mpscq_ring_write(r, "m1", 2), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_write(r, "m2", 2), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
    ck_assert_uint_eq(len, 40);
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
    ck_assert_int_eq(memcmp(out, "m1", 2), 0);
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
    ck_assert_int_eq(memcmp(out, "m2", 2), 0);
    mpscq_ring_detach(r);
}
END_TEST

/* ---- the zero-copy read ------------------------------------------------------ */

START_TEST(test_peek_contract)
{
    const size_t maxm = 700;
    mpscq_ring_t *r = new_ring(64 * 1024, maxm);
    const void *d = NULL, *d2 = NULL;
    size_t len = 0, len2 = 0;
    uint8_t in[700], out[64];
    ck_assert_int_eq(mpscq_ring_peek(NULL, &d, &len), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_peek(r, NULL, &len), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_peek(r, &d, NULL), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_peek_wait(r, NULL, &len, 0), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_release(NULL), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_peek(r, &d, &len), MPSCQ_EMPTY);
    ck_assert_int_eq(mpscq_ring_release(r), MPSCQ_INVAL);      /* nothing held */
    ck_assert_int_eq(mpscq_ring_peek_wait(r, &d, &len, 0), MPSCQ_EMPTY);
    ck_assert_int_eq(mpscq_ring_peek_wait(r, &d, &len, 1000000), MPSCQ_TIMEOUT);
    /* Every size, in place, whole; a second peek before the release gives
     * the same message; a release is once. */
    for (size_t n = 1; n <= maxm; n++) {
        for (size_t i = 0; i < n; i++)
            in[i] = (uint8_t)(n + i * 13);
        ck_assert_int_eq(mpscq_ring_write(r, in, n), MPSCQ_OK);
        ck_assert_int_eq(mpscq_ring_peek(r, &d, &len), MPSCQ_OK);
        ck_assert_uint_eq(len, n);
        ck_assert_int_eq(memcmp(d, in, n), 0);
        ck_assert_int_eq(mpscq_ring_peek_wait(r, &d2, &len2, -1), MPSCQ_OK);
        ck_assert_ptr_eq(d2, d);
        ck_assert_uint_eq(len2, n);
        ck_assert_int_eq(mpscq_ring_release(r), MPSCQ_OK);
        ck_assert_int_eq(mpscq_ring_release(r), MPSCQ_INVAL);
    }
    ck_assert_int_eq(mpscq_ring_peek(r, &d, &len), MPSCQ_EMPTY);
    /* Reading on releases the held message; peek and read share one order. */
    ck_assert_int_eq(mpscq_ring_write(r, "one", 3), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_write(r, "two", 3), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_write(r, "six", 3), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_peek(r, &d, &len), MPSCQ_OK);
    ck_assert_int_eq(memcmp(d, "one", 3), 0);
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
    ck_assert_int_eq(memcmp(out, "two", 3), 0);
    ck_assert_int_eq(mpscq_ring_release(r), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_peek(r, &d, &len), MPSCQ_OK);
    ck_assert_int_eq(memcmp(d, "six", 3), 0);
    ck_assert_int_eq(mpscq_ring_read_wait(r, out, sizeof out, &len, 0), MPSCQ_EMPTY);
    ck_assert_int_eq(mpscq_ring_release(r), MPSCQ_INVAL);
    /* Close: the held message stays readable; CLOSED once drained. */
    ck_assert_int_eq(mpscq_ring_write(r, "last", 4), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_peek(r, &d, &len), MPSCQ_OK);
    mpscq_ring_close(r);
    ck_assert_int_eq(mpscq_ring_peek_wait(r, &d2, &len2, -1), MPSCQ_OK);
    ck_assert_ptr_eq(d2, d);
    ck_assert_int_eq(memcmp(d, "last", 4), 0);
    ck_assert_int_eq(mpscq_ring_release(r), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_peek(r, &d, &len), MPSCQ_CLOSED);
    ck_assert_int_eq(mpscq_ring_peek_wait(r, &d, &len, -1), MPSCQ_CLOSED);
    mpscq_ring_detach(r);
}
END_TEST

/* A read that finds the consumer state corrupt (INVAL) still releases
 * the record held: a release after it has nothing to release.  (Found by
 * fuzz_ring once the release moved into the consumer call.) */
START_TEST(test_peek_released_by_failed_read)
{
    mpscq_ring_t *r = new_ring(16384, 0);
    ck_assert_int_eq(mpscq_ring_write(r, "a", 1), MPSCQ_OK);
    const void *d;
    size_t len;
    uint8_t out[16];
    ck_assert_int_eq(mpscq_ring_peek(r, &d, &len), MPSCQ_OK);
    uint32_t ng = r->cs->ngaps;
    r->cs->ngaps = UINT32_MAX;                 /* fails its check */
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_INVAL);
    r->cs->ngaps = ng;
    ck_assert_int_eq(mpscq_ring_release(r), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_EMPTY);
    mpscq_ring_detach(r);
}
END_TEST

/* A message passed by the main scan and one delivered late out of the gap
 * it left, both peeked in place. */
START_TEST(test_peek_passed_claim)
{
    mpscq_ring_t *r = new_ring(65536, 0);
    struct holder h = { .r = r, .len = 40 };
    pthread_t t;
    holder_start(&h, &t);
    ck_assert_int_eq(mpscq_ring_write(r, "after", 5), MPSCQ_OK);
    const void *d;
    size_t len;
    ck_assert_int_eq(mpscq_ring_peek(r, &d, &len), MPSCQ_OK);
    ck_assert_uint_eq(len, 5);
    ck_assert_int_eq(memcmp(d, "after", 5), 0);
    ck_assert_int_eq(mpscq_ring_release(r), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_peek(r, &d, &len), MPSCQ_EMPTY);
    holder_finish(&h, t);
    ck_assert_int_eq(mpscq_ring_peek(r, &d, &len), MPSCQ_OK);
    ck_assert_uint_eq(len, 40);
    ck_assert_uint_eq(((const uint8_t *)d)[0], 'H');
    ck_assert_uint_eq(((const uint8_t *)d)[39], 'H');
    ck_assert_int_eq(mpscq_ring_release(r), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_peek(r, &d, &len), MPSCQ_EMPTY);
    mpscq_ring_detach(r);
}
END_TEST

/* Write and peek 100-byte messages (releasing each) until a peek takes
 * the record that ends the head's chunk, whose retirement then waits for
 * the release.  That record stays held: its payload in *d. */
static void peek_chunk_end(mpscq_ring_t *r, const void **d, size_t *len)
{
    uint8_t m[100];
    for (uint32_t seq = 0;; seq++) {
        uint64_t c = ring_chunk(r, r->cs->head);
        msg_fill(m, 9, seq, sizeof m);
        ck_assert_int_eq(mpscq_ring_write(r, m, sizeof m), MPSCQ_OK);
        ck_assert_int_eq(mpscq_ring_peek(r, d, len), MPSCQ_OK);
        ck_assert_uint_eq(*len, sizeof m);
        ck_assert_int_eq(memcmp(*d, m, sizeof m), 0);
        if (ring_chunk(r, r->cs->head) != c) {
            ck_assert_uint_eq(r->cs->held, c + 1);   /* the case meant */
            return;
        }
        ck_assert_int_eq(mpscq_ring_release(r), MPSCQ_OK);
    }
}

/* The chunk of a held message is not given to the producers: filling the
 * ring while the consumer holds the message that ended a chunk leaves its
 * bytes as they were. */
START_TEST(test_peek_holds_its_chunk)
{
    unsigned cap;
    mpscq_ring_t *r = lapped_ring(&cap);
    const void *d;
    size_t len;
    peek_chunk_end(r, &d, &len);
    uint8_t copy[100], z[100];
    memcpy(copy, d, sizeof copy);
    memset(z, 'z', sizeof z);
    unsigned n = 0;
    while (mpscq_ring_write(r, z, sizeof z) == MPSCQ_OK)
        n++;
    ck_assert_uint_gt(n, 0);
    ck_assert_int_eq(memcmp(d, copy, sizeof copy), 0);
    ck_assert_int_eq(mpscq_ring_release(r), MPSCQ_OK);
    ck_assert_uint_eq(r->cs->held, 0);
    uint8_t out[100];
    for (unsigned i = 0; i < n; i++) {
        ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
        ck_assert_int_eq(memcmp(out, z, sizeof z), 0);
    }
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_EMPTY);
    /* The held chunk came back with the release. */
    for (int lap = 0; lap < 3; lap++)
        capacity_back(r, cap);
    mpscq_ring_detach(r);
}
END_TEST

/* A record that spills into the next chunk, committed after the scan
 * passed its start (a gap) and stopped at its spill: delivered from the
 * gap, it takes the head past its spill, so that the spill is not passed
 * later as a gap of its own, which pinned its chunk until a sweep (found
 * by fuzz_ring's end-of-input check, seed spill-gap-swept). */
START_TEST(test_spill_not_left_as_gap)
{
    mpscq_ring_t *r = new_ring(16384, 4000);     /* 2 chunks, records longer than S */
    ck_assert_uint_eq(r->K, 2);
    uint8_t m[4000], out[4000];
    size_t len;
    memset(m, 'a', sizeof m);
    ck_assert_int_eq(mpscq_ring_write(r, m, 157), MPSCQ_OK);          /* [0, 176) */
    void *b;
    ck_assert_int_eq(mpscq_ring_reserve(r, 3985, &b), MPSCQ_OK);      /* [176, 4192) */
    ck_assert_uint_gt(176 + 16 + 3985, r->S);                         /* spills into chunk 1 */
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
    ck_assert_uint_eq(len, 157);
    /* The claim passed to the chunk's end, the head at its spill. */
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_EMPTY);
    ck_assert_uint_eq(r->cs->head, r->S);
    memset(b, 'b', 3985);
    ck_assert_int_eq(mpscq_ring_commit(r, b), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);   /* from the gap */
    ck_assert_uint_eq(len, 3985);
    ck_assert_uint_eq(out[0], 'b');
    ck_assert_int_eq(mpscq_ring_write(r, m, 100), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
    ck_assert_uint_eq(len, 100);
    ck_assert_uint_eq(r->cs->ngaps, 0);           /* no gap holding only a spill */
    ck_assert_uint_eq(ring_chunks_accounted(r), r->K);   /* both chunks free or in use */
    mpscq_ring_detach(r);
}
END_TEST

/* The open claim b (n bytes) filled and committed, then taken: read
 * (mode 0 and 2) or peeked and released (mode 1). */
static void commit_take(mpscq_ring_t *r, void *b, size_t n, int mode, uint8_t *out)
{
    size_t len;
    memset(b, 'b', n);
    ck_assert_int_eq(mpscq_ring_commit(r, b), MPSCQ_OK);
    if (mode == 1) {
        const void *d;
        ck_assert_int_eq(mpscq_ring_peek(r, &d, &len), MPSCQ_OK);
        ck_assert_uint_eq(len, n);
        ck_assert_int_eq(memcmp(d, b, n), 0);
        ck_assert_int_eq(mpscq_ring_release(r), MPSCQ_OK);
    } else {
        ck_assert_int_eq(mpscq_ring_read(r, out, n, &len), MPSCQ_OK);
        ck_assert_uint_eq(len, n);
        ck_assert_uint_eq(out[0], 'b');
    }
}

/* Drained: no gap left, every chunk back; then 300 laps of messages of
 * 1 .. max bytes (lengths stepping by `step`), each lap filled until FULL
 * and read back whole.  Detaches r. */
static void whole_again(mpscq_ring_t *r, const uint8_t *m, size_t max, size_t step, uint8_t *out)
{
    size_t len;
    ck_assert_int_eq(mpscq_ring_read(r, out, max, &len), MPSCQ_EMPTY);
    ck_assert_uint_eq(r->cs->ngaps, 0);
    ck_assert_uint_eq(ring_chunks_accounted(r), r->K);
    for (size_t lap = 0; lap < 300; lap++) {
        size_t wrote = 0, got = 0;
        while (mpscq_ring_write(r, m, 1 + (lap * 37 + wrote * step) % max) == MPSCQ_OK)
            wrote++;
        ck_assert_uint_gt(wrote, 0);
        while (mpscq_ring_read(r, out, max, &len) == MPSCQ_OK)
            got++;
        ck_assert_uint_eq(got, wrote);
    }
    mpscq_ring_detach(r);
}

/* The head stuck at oldest + M inside a record longer than several
 * chunks: the record, delivered from its gap, takes the head across
 * chunks (passed_chunks from gap_pass); nothing lost, no gap left, the
 * whole ring back.  mode 0 read, 1 peek, 2 close first.  (From the
 * review of test_spill_not_left_as_gap's fix.) */
static void spill_pinned(int mode)
{
    mpscq_ring_t *r = new_ring(8192, 3888);
    ck_assert_uint_gt(r->max_rec, 3 * r->S);
    struct holder h = { .r = r, .len = 10 };
    pthread_t t;
    uint64_t a = atomic_load(&r->sh->tail) / r->S;
    holder_start(&h, &t);
    static uint8_t m[3888], out[3888];
    size_t len;
    memset(m, 'm', sizeof m);
    unsigned n = 0;
    while (atomic_load(&r->sh->tail) < (a + r->M - 1) * r->S) {
        ck_assert_int_eq(mpscq_ring_write(r, m, 16), MPSCQ_OK);
        n++;
        ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
    }
    void *b;
    uint64_t pos = atomic_load(&r->sh->tail);
    ck_assert_int_eq(mpscq_ring_reserve(r, 3888, &b), MPSCQ_OK);
    ck_assert_uint_eq(ring_chunk(r, pos), a + r->M - 1);
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_EMPTY);
    if (mode == 2)
        mpscq_ring_close(r);
    commit_take(r, b, 3888, mode, out);
    ck_assert_uint_le(r->cs->head, r->cs->limit);
    holder_finish(&h, t);
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
    ck_assert_uint_eq(len, 10);
    ck_assert_uint_eq(out[0], 'H');
    if (mode == 2) {
        ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_CLOSED);
        mpscq_ring_detach(r);
        return;
    }
    whole_again(r, m, 3888, 101, out);
}
START_TEST(test_spill_across_chunks_pinned) { spill_pinned(_i); }
END_TEST


/* A record longer than M chunks, the head stuck at oldest + M inside it:
 * delivered from its gap, it takes the head to its end.  mode 0 read, 1
 * peek, 2 close.  (From the same review.) */
static void spill_huge(int mode)
{
    mpscq_ring_t *r = new_ring(65536, 32560);
    static uint8_t m[32560], out[32560];
    size_t len;
    ck_assert_uint_gt(r->max_rec, (r->M + 2) * r->S);
    /* one lap of small messages first, so the chunks are recycled */
    for (int i = 0; i < 50; i++) {
        ck_assert_int_eq(mpscq_ring_write(r, m, 40), MPSCQ_OK);
        ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
    }
    void *b;
    ck_assert_int_eq(mpscq_ring_reserve(r, 32560, &b), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_EMPTY);
    if (mode == 2)
        mpscq_ring_close(r);
    commit_take(r, b, 32560, mode, out);
    if (mode == 2) {
        ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_CLOSED);
        mpscq_ring_detach(r);
        return;
    }
    whole_again(r, m, 32560, 1001, out);
}
START_TEST(test_spill_longer_than_m_chunks) { spill_huge(_i); }
END_TEST


/* A faulty producer rewrites its own header with a larger length (and a
 * check word to match) before committing a claim passed as a gap: the
 * record's end is then past the limit, and the head must not move there
 * (it did, and the next 20 messages of a sound producer were lost).
 * (From the same review.) */
static void *sound_writer_main(void *arg)
{
    mpscq_ring_t *r = arg;
    return (void *)(intptr_t)mpscq_ring_write(r, "W", 1);
}
START_TEST(test_garbage_length_head_within_limit)
{
    mpscq_ring_t *r = new_ring(65536, 4000);
    uint8_t out[4000];
    size_t len;
    void *b;
    uint64_t pos = atomic_load(&r->sh->tail);
    ck_assert_int_eq(mpscq_ring_reserve(r, 1, &b), MPSCQ_OK);     /* C: [pos, pos+32) */
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, sound_writer_main, r), 0);
    void *rv;
    pthread_join(t, &rv);
    ck_assert_int_eq((int)(intptr_t)rv, MPSCQ_OK);                 /* W after it */
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
    ck_assert_uint_eq(out[0], 'W');
    /* faulty: a sound header with a larger length */
    struct ring_rec h = { pos, 4000, 4000 ^ RING_REC_CHECK };
    memcpy((uint8_t *)b - RING_HDR, &h, sizeof h);
    ck_assert_int_eq(mpscq_ring_commit(r, b), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
    ck_assert_uint_le(r->cs->head, r->cs->limit);
    /* Sound messages after it: every one delivered. */
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(mpscq_ring_write(r, "x", 1), MPSCQ_OK);
        ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
        ck_assert_uint_eq(out[0], 'x');
    }
    mpscq_ring_detach(r);
}
END_TEST

/* A record delivered late out of a gap, whose chunk the delivery would
 * retire (gap_remove), is held there until the release.  (From the
 * review of the zero-copy read.) */
START_TEST(test_peek_gap_holds)
{
    unsigned cap;
    mpscq_ring_t *r = lapped_ring(&cap);
    uint64_t c0 = ring_chunk(r, atomic_load(&r->sh->tail));
    struct holder h = { .r = r, .len = 40 };
    pthread_t t;
    holder_start(&h, &t);
    /* The head moves on past the open claim's chunk. */
    uint8_t m[100], out[200];
    size_t len;
    memset(m, 'a', sizeof m);
    while (ring_chunk(r, r->cs->head) < c0 + 3) {
        if (mpscq_ring_write(r, m, sizeof m) != MPSCQ_OK)
            while (mpscq_ring_read(r, out, sizeof out, &len) == MPSCQ_OK)
                ck_assert_uint_eq(out[0], 'a');
    }
    while (mpscq_ring_read(r, out, sizeof out, &len) == MPSCQ_OK)
        ck_assert_uint_eq(out[0], 'a');
    holder_finish(&h, t);
    const void *d;
    ck_assert_int_eq(mpscq_ring_peek(r, &d, &len), MPSCQ_OK);
    ck_assert_uint_eq(len, 40);
    ck_assert_uint_eq(r->cs->held, c0 + 1);      /* the case meant */
    memset(m, 'z', sizeof m);
    unsigned n = 0;
    while (mpscq_ring_write(r, m, sizeof m) == MPSCQ_OK)
        n++;
    ck_assert_uint_gt(n, 0);
    for (int k = 0; k < 40; k++)
        ck_assert_uint_eq(((const uint8_t *)d)[k], 'H');
    ck_assert_int_eq(mpscq_ring_release(r), MPSCQ_OK);
    ck_assert_uint_eq(r->cs->held, 0);
    ck_assert_uint_eq(drain(r), n);
    push_through(r, cap, 30);
    ck_assert_uint_eq(ring_chunks_accounted(r), r->K);
    mpscq_ring_detach(r);
}
END_TEST

/* Handle A holds a record that ended its chunk; handle B consumes next
 * (retiring A's chunk), holds one of its own, and detaches.  A's late
 * release must leave B's held chunk named in the region, for the next
 * consumer to retire: wiping it left the ring FULL for good once the
 * head came M chunks past it.  (Found by the review.) */
START_TEST(test_peek_stale_release)
{
    unsigned cap;
    mpscq_ring_t *r = lapped_ring(&cap);
    mpscq_ring_t *a = NULL, *b = NULL;
    ck_assert_int_eq(mpscq_ring_open_fd(&a, mpscq_ring_fd(r)), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_open_fd(&b, mpscq_ring_fd(r)), MPSCQ_OK);
    const void *d;
    size_t len;
    peek_chunk_end(a, &d, &len);
    peek_chunk_end(b, &d, &len);
    uint64_t bheld = r->cs->held;
    ck_assert_int_eq(mpscq_ring_release(a), MPSCQ_OK);   /* A, late */
    ck_assert_uint_eq(r->cs->held, bheld);
    mpscq_ring_detach(b);
    mpscq_ring_detach(a);
    /* 40 capacities: the head passes M = 64 chunks after B's. */
    uint64_t corrupt = r->cs->corrupt;
    push_through(r, cap, 40);
    ck_assert_uint_eq(r->cs->corrupt, corrupt);
    ck_assert_uint_eq(ring_chunks_accounted(r), r->K);
    mpscq_ring_detach(r);
}
END_TEST

/* A consumer dies holding a record that ended its chunk, and a faulty
 * process then clears `held`: the orphaned chunk is found where
 * installing reaches its map word again, and retired, so the ring does
 * not stay FULL once the head is M chunks past it. */
START_TEST(test_peek_lost_hold)
{
    unsigned cap;
    mpscq_ring_t *r = lapped_ring(&cap);
    mpscq_ring_t *a = NULL;
    ck_assert_int_eq(mpscq_ring_open_fd(&a, mpscq_ring_fd(r)), MPSCQ_OK);
    const void *d;
    size_t len;
    peek_chunk_end(a, &d, &len);
    mpscq_ring_detach(a);
    r->cs->held = 0;                      /* the faulty write */
    push_through(r, cap, 40);             /* the head passes M = 64 chunks */
    ck_assert_uint_eq(ring_chunks_accounted(r), r->K);
    capacity_back(r, cap);
    mpscq_ring_detach(r);
}
END_TEST

/* Garbage in the region's `held` (a faulty process), any value: reads go
 * on and no physical chunk is lost or freed twice. */
START_TEST(test_peek_garbage_held)
{
    unsigned cap;
    mpscq_ring_t *r = lapped_ring(&cap);
    uint64_t hc = ring_chunk(r, r->cs->head);
    const uint64_t vals[] = { 1, 2, hc, hc + 1, hc + 2, hc + r->M, hc + 1 - r->M, UINT64_MAX,
                              UINT64_MAX - 1, UINT64_C(1) << 63, (UINT64_C(1) << 44) + hc,
                              (UINT64_C(1) << 44) + hc + 1, UINT64_C(0x123456789abcdef) };
    uint8_t m[100] = { 0 };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        r->cs->held = vals[i];
        push_through(r, cap, 2);
        ck_assert_uint_eq(r->cs->held, 0);
        ck_assert_uint_eq(ring_chunks_accounted(r), r->K);
        /* Half full: every chunk number around the head, behind it and
         * ahead of it. */
        for (unsigned k = 0; k < cap / 2; k++)
            ck_assert_int_eq(mpscq_ring_write(r, m, sizeof m), MPSCQ_OK);
        hc = ring_chunk(r, r->cs->head);
        for (uint64_t c = hc > 4 ? hc - 4 : 0; c < hc + 6; c++) {
            r->cs->held = c + 1;
            const void *d;
            size_t len;
            ck_assert_int_eq(mpscq_ring_peek(r, &d, &len), MPSCQ_OK);
            ck_assert_int_eq(mpscq_ring_release(r), MPSCQ_OK);
        }
        drain(r);
        ck_assert_uint_eq(ring_chunks_accounted(r), r->K);
    }
    mpscq_ring_detach(r);
}
END_TEST

/* A consumer that detaches (or dies) holding such a message: the next
 * consumer, on another handle, gives its chunk back. */
START_TEST(test_peek_abandoned_by_consumer)
{
    unsigned cap;
    mpscq_ring_t *r = lapped_ring(&cap);
    mpscq_ring_t *c2 = NULL;
    ck_assert_int_eq(mpscq_ring_open_fd(&c2, mpscq_ring_fd(r)), MPSCQ_OK);
    const void *d;
    size_t len;
    peek_chunk_end(c2, &d, &len);
    mpscq_ring_detach(c2);
    ck_assert_uint_ne(r->cs->held, 0);
    push_through(r, cap, 3);
    ck_assert_uint_eq(r->cs->held, 0);
    for (int lap = 0; lap < 3; lap++)
        capacity_back(r, cap);
    mpscq_ring_detach(r);
}
END_TEST

/* ---- counters ---------------------------------------------------------------- */

static void *stats_writer_main(void *arg)
{
    mpscq_ring_t *r = arg;
    return (void *)(intptr_t)mpscq_ring_write(r, "t", 1);
}

START_TEST(test_stats)
{
    struct mpscq_ring_stats st;
    memset(&st, 0xff, sizeof st);
    mpscq_ring_stats(NULL, &st);
    ck_assert_uint_eq(st.delivered, 0);
    ck_assert_uint_eq(st.closed, 0);
    mpscq_ring_stats(NULL, NULL);                      /* ignored */
    mpscq_ring_t *r = new_ring(16384, 0);
    mpscq_ring_stats(r, &st);
    ck_assert_uint_eq(st.delivered + st.full + st.dropped_claims + st.corrupt +
                          st.refused_chunks + st.producers + st.closed, 0);
    /* A producer thread counts while attached, and not after it exits. */
    pthread_t t;
    void *rc;
    ck_assert_int_eq(pthread_create(&t, NULL, stats_writer_main, r), 0);
    pthread_join(t, &rc);
    ck_assert_int_eq((int)(intptr_t)rc, MPSCQ_OK);
    mpscq_ring_stats(r, &st);
    ck_assert_uint_eq(st.producers, 0);
    unsigned n = fill_100(r);                           /* one FULL */
    ck_assert_int_eq(mpscq_ring_write(r, "x", 1), MPSCQ_FULL);
    mpscq_ring_stats(r, &st);
    ck_assert_uint_eq(st.producers, 1);
    ck_assert_uint_eq(st.full, 2);
    ck_assert_uint_eq(st.delivered, 0);
    /* Reads and peeks count as delivered, at the take. */
    uint8_t out[100];
    size_t len;
    const void *d;
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_peek(r, &d, &len), MPSCQ_OK);
    mpscq_ring_stats(r, &st);
    ck_assert_uint_eq(st.delivered, 2);
    ck_assert_int_eq(mpscq_ring_release(r), MPSCQ_OK);
    ck_assert_uint_eq(drain(r), n + 1 - 2);
    /* The sized call writes only the bytes it is given. */
    memset(&st, 0xee, sizeof st);
    mpscq_ring_stats_sized(r, &st, sizeof st.delivered);
    ck_assert_uint_eq(st.delivered, n + 1);
    ck_assert_uint_eq(st.full, 0xeeeeeeeeeeeeeeeeull);
    mpscq_ring_close(r);
    mpscq_ring_stats(r, &st);
    ck_assert_uint_eq(st.closed, 1);
    ck_assert_uint_eq(st.dropped_claims + st.corrupt, 0);
    /* Another handle on the same region sees the same counters. */
    mpscq_ring_t *o = NULL;
    ck_assert_int_eq(mpscq_ring_open_fd(&o, mpscq_ring_fd(r)), MPSCQ_OK);
    struct mpscq_ring_stats so;
    mpscq_ring_stats(o, &so);
    ck_assert_int_eq(memcmp(&so, &st, sizeof st), 0);
    mpscq_ring_detach(o);
    mpscq_ring_detach(r);
}
END_TEST

/* ---- a producer stopped at a chosen step (test hooks) ---------------------------- */

static _Thread_local int hk_me;          /* this thread stops at hooks */
static _Atomic int hk_want = -1, hk_stopped, hk_go;

static void ring_hook(int where, const struct mpscq *q, uint64_t t)
{
    MPSCQ_HG_ATOMIC(&hk_want, sizeof hk_want);
    (void)q;
    (void)t;
    if (!hk_me || where != atomic_load(&hk_want))
        return;
    atomic_store(&hk_stopped, 1);
    while (!atomic_load(&hk_go))
        sched_yield();
    atomic_store(&hk_go, 0);
}
/* Let the stopped thread go on to the next stop at `where` (-1: none). */
static void hk_next(int where)
{
    atomic_store(&hk_stopped, 0);
    atomic_store(&hk_want, where);
    atomic_store(&hk_go, 1);
}
/* Arm the hook: the next thread with hk_me set stops at `where`. */
static void hk_arm(int where)
{
    atomic_store(&hk_want, where);
    atomic_store(&hk_stopped, 0);
    atomic_store(&hk_go, 0);
    if (mpscq_test_hook != ring_hook)   /* no write while others read it */
        mpscq_test_hook = ring_hook;
}
static void hk_wait(void)
{
    while (!atomic_load(&hk_stopped))
        sched_yield();
}

struct hwriter {
    mpscq_ring_t *r;
    int rc;
};
static void *hwriter_main(void *arg)
{
    struct hwriter *w = arg;
    uint8_t m[100];
    memset(m, 'W', sizeof m);
    hk_me = 1;
    w->rc = mpscq_ring_write(w->r, m, sizeof m);
    return NULL;
}

/* The consumer reads a committed record at its head without loading
 * tail only while nothing is passed: here a claim X is passed (a gap),
 * then committed, and a record Z written after that commit lands at the
 * head.  X's commit came first, so X is read first (the gap pass after a
 * tail load); taking Z at the head at once would read Z first.  Failed
 * with the head look made regardless of gaps. */
START_TEST(test_passed_claim_before_head_record)
{
    mpscq_ring_t *r = new_ring(16384, 0);
    struct holder h = { .r = r, .len = 7 };
    pthread_t t;
    holder_start(&h, &t);                        /* X, open */
    ck_assert_int_eq(mpscq_ring_write(r, "W1", 2), MPSCQ_OK);
    uint8_t out[64];
    size_t len;
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
    ck_assert_uint_eq(len, 2);                   /* W1; X passed */
    ck_assert_uint_eq(r->cs->ngaps, 1);
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_EMPTY);
    holder_finish(&h, t);                        /* X committed */
    ck_assert_int_eq(mpscq_ring_write(r, "Z", 1), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
    ck_assert_uint_eq(len, 7);                   /* X first */
    ck_assert_uint_eq(out[0], 'H');
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
    ck_assert_uint_eq(len, 1);
    ck_assert_uint_eq(out[0], 'Z');
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_EMPTY);
    mpscq_ring_detach(r);
}
END_TEST

/* ---- writers waiting for room ------------------------------------------------ */

struct wwriter {
    mpscq_ring_t *r;
    long long timeout;
    int rc;
    int stop;                   /* stop at the armed hook */
};
static void *wwriter_main(void *arg)
{
    struct wwriter *w = arg;
    uint8_t m[100];
    memset(m, 'W', sizeof m);
    hk_me = w->stop;
    w->rc = mpscq_ring_write_wait(w->r, m, sizeof m, w->timeout);
    return NULL;
}
/* Back once a writer is counted as waiting for room. */
static void wait_for_waiter(mpscq_ring_t *r)
{
    while (!atomic_load(&r->sh->space_waiters))
        sched_yield();
}

START_TEST(test_write_wait)
{
    mpscq_ring_t *r = new_ring(65536, 0);
    uint8_t m[100] = { 0 }, out[100];
    size_t len;
    ck_assert_int_eq(mpscq_ring_write_wait(r, m, sizeof m, 0), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_write_wait(NULL, m, sizeof m, -1), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_ring_write_wait(r, NULL, sizeof m, -1), MPSCQ_INVAL);
    unsigned n = 1 + fill_100(r);
    ck_assert_int_eq(mpscq_ring_write_wait(r, m, sizeof m, 0), MPSCQ_FULL);
    ck_assert_int_eq(mpscq_ring_write_wait(r, m, sizeof m, 1000000), MPSCQ_TIMEOUT);
    ck_assert_uint_eq(atomic_load(&r->sh->space_waiters), 0);
    /* A writer asleep on a full ring is woken when the consumer frees a
     * chunk, and its message comes after everything before it. */
    struct wwriter w = { .r = r, .timeout = -1 };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, wwriter_main, &w), 0);
    wait_for_waiter(r);
    unsigned got = 0;
    for (;;) {
        int rc = mpscq_ring_read(r, out, sizeof out, &len);
        if (rc == MPSCQ_OK) {
            if (++got == n + 1)
                break;
            ck_assert_uint_eq(out[0], 0);
            continue;
        }
        ck_assert_int_eq(rc, MPSCQ_EMPTY);       /* the writer not in yet */
        sched_yield();
    }
    ck_assert_uint_eq(out[0], 'W');              /* last, as claimed */
    pthread_join(t, NULL);
    ck_assert_int_eq(w.rc, MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_EMPTY);
    ck_assert_uint_eq(atomic_load(&r->sh->space_waiters), 0);
    /* Close wakes a waiting writer with CLOSED. */
    n = fill_100(r);
    w.rc = -1;
    ck_assert_int_eq(pthread_create(&t, NULL, wwriter_main, &w), 0);
    wait_for_waiter(r);
    mpscq_ring_close(r);
    pthread_join(t, NULL);
    ck_assert_int_eq(w.rc, MPSCQ_CLOSED);
    got = 0;
    int rc;
    while ((rc = mpscq_ring_read(r, out, sizeof out, &len)) == MPSCQ_OK)
        got++;
    ck_assert_int_eq(rc, MPSCQ_CLOSED);
    ck_assert_uint_eq(got, n);                   /* nothing of the writer's */
    mpscq_ring_detach(r);
}
END_TEST

/* The consumer frees room between a writer's last try (FULL) and its
 * FUTEX_WAIT (hook _SPACE_WAIT): the consumer's bump of space_seq makes
 * the wait return at once.  Without it the writer sleeps for good (the
 * test's timeout). */
START_TEST(test_write_wait_room_before_sleep)
{
    mpscq_ring_t *r = new_ring(65536, 0);
    unsigned n = fill_100(r);
    struct wwriter w = { .r = r, .timeout = -1, .stop = 1 };
    pthread_t t;
    hk_arm(MPSCQ_HOOK_RING_SPACE_WAIT);
    ck_assert_int_eq(pthread_create(&t, NULL, wwriter_main, &w), 0);
    hk_wait();                                   /* FULL, about to sleep */
    ck_assert_uint_eq(drain(r), n);              /* room, and the bump */
    ck_assert_uint_eq(atomic_load(&r->sh->space_waiters), 1);
    hk_next(-1);
    pthread_join(t, NULL);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(w.rc, MPSCQ_OK);
    uint8_t out[100];
    size_t len;
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
    ck_assert_uint_eq(out[0], 'W');
    mpscq_ring_detach(r);
}
END_TEST

/* Catch-up: the consumer stops at a claim with nothing committed after
 * it, spins, and looks once more in the same call.  The hook commits the
 * claim during the spin: the read delivers it instead of EMPTY.  A claim
 * that stays open costs one spin and EMPTY, and nothing is passed. */
static struct holder *cu_holder;
/* From a hook in the consumer: let cu_holder commit, wait until it has. */
static void cu_commit_now(void)
{
    atomic_store(&cu_holder->go, 1);
    while (atomic_load(&cu_holder->reserved) != 2)
        sched_yield();
}
static void cu_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    (void)t;
    if (where != MPSCQ_HOOK_RING_CATCH_UP || !cu_holder)
        return;
    atomic_fetch_add(&hk_stopped, 1);
    if (atomic_load(&hk_go))
        cu_commit_now();
}
START_TEST(test_catch_up_sees_commit)
{
    mpscq_ring_t *r = new_ring(16384, 0);
    struct holder h = { .r = r, .len = 5 };
    atomic_store(&hk_stopped, 0);
    atomic_store(&hk_go, 0);
    /* The hook before the thread (which reads it at its own hooks): no
     * write while another thread reads it. */
    cu_holder = &h;
    mpscq_test_hook = cu_hook;
    pthread_t t;
    holder_start(&h, &t);
    uint8_t out[64];
    size_t len;
    /* Open claim, nothing after it: one spin, EMPTY, nothing passed. */
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_EMPTY);
    ck_assert_int_eq(atomic_load(&hk_stopped), 1);
    ck_assert_uint_eq(r->cs->ngaps, 0);
    /* Committed during the spin: delivered by the same call. */
    atomic_store(&hk_go, 1);
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
    ck_assert_int_eq(atomic_load(&hk_stopped), 2);
    ck_assert_uint_eq(len, 5);
    ck_assert_uint_eq(out[0], 'H');
    pthread_join(t, NULL);
    mpscq_test_hook = NULL;
    cu_holder = NULL;
    ck_assert_int_eq(h.rc, MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_EMPTY);
    mpscq_ring_detach(r);
}
END_TEST

/* read_wait spins before it sleeps: a claim committed during the spin
 * (here at the spin's first read, the second catch-up of the call) is
 * returned with no `sleeping` store (the PARK hook never runs).  Failed
 * before the spin: the second look was read_wait's last one after
 * storing `sleeping`. */
static _Atomic int sw_catch, sw_park;
static void sw_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    (void)t;
    if (where == MPSCQ_HOOK_RING_PARK)
        atomic_fetch_add(&sw_park, 1);
    if (where == MPSCQ_HOOK_RING_CATCH_UP && atomic_fetch_add(&sw_catch, 1) == 1 && cu_holder)
        cu_commit_now();
}

START_TEST(test_read_wait_spins_before_sleeping)
{
    mpscq_ring_t *r = new_ring(16384, 0);
    struct holder h = { .r = r, .len = 9 };
    atomic_store(&sw_catch, 0);
    atomic_store(&sw_park, 0);
    cu_holder = &h;
    mpscq_test_hook = sw_hook;   /* before the thread, as above */
    pthread_t t;
    holder_start(&h, &t);
    uint8_t out[64];
    size_t len;
    ck_assert_int_eq(mpscq_ring_read_wait(r, out, sizeof out, &len, -1), MPSCQ_OK);
    ck_assert_uint_eq(len, 9);
    ck_assert_int_ge(atomic_load(&sw_catch), 2);
    ck_assert_int_eq(atomic_load(&sw_park), 0);
    ck_assert_uint_eq(atomic_load_explicit(&r->sh->sleeping, memory_order_relaxed), 0);
    pthread_join(t, NULL);
    mpscq_test_hook = NULL;
    cu_holder = NULL;
    ck_assert_int_eq(h.rc, MPSCQ_OK);
    mpscq_ring_detach(r);
}
END_TEST

/* A producer passes the pre-check, the ring fills, and its claim lands
 * in the chunk after the last installed one: it refuses that chunk (FULL).
 * The consumer passes the refused chunk and gives its map word to a later
 * chunk number; producers whose tail is still inside it must skip to the
 * next installed chunk instead of saying FULL for ever. */
START_TEST(test_claim_in_refused_chunk)
{
    mpscq_ring_t *r = new_ring(16384, 0);
    hk_arm(MPSCQ_HOOK_RING_PRECHECKED);
    struct hwriter w = { r, -1 };
    MPSCQ_HG_ATOMIC(&w, sizeof w);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, hwriter_main, &w), 0);
    hk_wait();
    unsigned n = fill_100(r);
    hk_next(-1);
    pthread_join(t, NULL);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(w.rc, MPSCQ_FULL);
    ck_assert_uint_eq(drain(r), n);
    ck_assert_uint_eq(r->cs->refused_chunks, 1);
    /* The ring takes messages again, as many as before. */
    capacity_back(r, n);
    mpscq_ring_detach(r);
}
END_TEST

/* A producer's claim lands in a chunk not installed yet, and the consumer
 * installs it before the producer reads its map word: the producer
 * writes there (its refusal CAS fails) and the message is delivered. */
START_TEST(test_claim_then_install)
{
    mpscq_ring_t *r = new_ring(16384, 0);
    hk_arm(MPSCQ_HOOK_RING_PRECHECKED);
    struct hwriter w = { r, -1 };
    MPSCQ_HG_ATOMIC(&w, sizeof w);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, hwriter_main, &w), 0);
    hk_wait();
    unsigned n = fill_100(r);
    hk_next(MPSCQ_HOOK_RING_CLAIMED);
    hk_wait();                                   /* claimed, map not read */
    ck_assert_uint_eq(drain(r), n);              /* retires, installs its chunk */
    hk_next(-1);
    pthread_join(t, NULL);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(w.rc, MPSCQ_OK);
    uint8_t out[128];
    size_t len;
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
    ck_assert_uint_eq(len, 100);
    ck_assert_uint_eq(out[0], 'W');
    ck_assert_uint_eq(r->cs->refused_chunks, 0);
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_EMPTY);
    mpscq_ring_detach(r);
}
END_TEST

/* Every installed chunk pinned by an open claim when the consumer passes
 * a refused chunk: no chunk is free then, so installing has not reached
 * the refused one, whose map word the consumer hands on to a later chunk
 * number.  When the claims commit, installing must go on past it. */
START_TEST(test_refused_chunk_passed_while_pinned)
{
    unsigned cap;
    mpscq_ring_t *r = lapped_ring(&cap);
    uint8_t m[100] = { 0 };
    enum { MAXK = 16 };
    ck_assert_uint_le(r->K, MAXK);
    struct holder h[MAXK];
    pthread_t ht[MAXK];
    /* The hook is set while no other thread runs (they read it). */
    atomic_store(&hk_want, -1);
    mpscq_test_hook = ring_hook;
    uint64_t c0 = atomic_load(&r->sh->tail) / r->S;
    for (unsigned i = 0; i < r->K; i++) {
        /* A claim held open in each installed chunk from c0 on. */
        while (atomic_load(&r->sh->tail) / r->S < c0 + i)
            ck_assert_int_eq(mpscq_ring_write(r, m, sizeof m), MPSCQ_OK);
        h[i] = (struct holder){ .r = r, .len = 20 };
        holder_start(&h[i], &ht[i]);
    }
    hk_arm(MPSCQ_HOOK_RING_PRECHECKED);
    struct hwriter w = { r, -1 };
    MPSCQ_HG_ATOMIC(&w, sizeof w);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, hwriter_main, &w), 0);
    hk_wait();
    fill_100(r);
    hk_next(-1);
    pthread_join(t, NULL);
    ck_assert_int_eq(w.rc, MPSCQ_FULL);          /* it refused the next chunk */
    drain(r);                                    /* passes every claim, and the refused chunk */
    ck_assert_uint_eq(r->cs->refused_chunks, 1);
    ck_assert_uint_eq(r->cs->nfree, 0);          /* every chunk pinned */
    for (unsigned i = 0; i < r->K; i++) {
        holder_finish(&h[i], ht[i]);
    }
    mpscq_test_hook = NULL;
    ck_assert_uint_eq(drain(r), r->K);          /* the late commits */
    capacity_back(r, cap);
    mpscq_ring_detach(r);
}
END_TEST

/* Messages longer than a chunk, while a claim pins one chunk: records
 * spill over whole chunks, some of them chunks whose map word still
 * belongs to the pinned one.  After the claim commits, the ring must
 * cycle at full capacity again (each round: a fresh pin, writes until
 * the ring stops, the commit, then laps). */
START_TEST(test_spill_over_aliased_chunks)
{
    srand(4242);
    for (int round = 0; round < 12; round++) {
        mpscq_ring_t *r = new_ring(4096, 1500);
        ck_assert_uint_lt(r->S, r->max_rec);     /* records span chunks */
        struct holder h = { .r = r, .len = 1 + (size_t)rand() % 100 };
        pthread_t t;
        holder_start(&h, &t);
        static uint8_t m[1500], out[1500];
        size_t len;
        /* Write and drain until writes stop (the pinned chunk's word is
         * M chunk numbers behind). */
        for (int stuck = 0; stuck < 3;) {
            int wrote = 0;
            while (mpscq_ring_write(r, m, 1 + (size_t)rand() % 1500) == MPSCQ_OK)
                wrote++;
            stuck = wrote ? 0 : stuck + 1;
            while (mpscq_ring_read(r, out, sizeof out, &len) == MPSCQ_OK)
                ;
        }
        holder_finish(&h, t);
        while (mpscq_ring_read(r, out, sizeof out, &len) == MPSCQ_OK)
            ;
        /* Laps over more than M chunk numbers: every map word reused. */
        for (int lap = 0; lap < 150; lap++) {
            int wrote = 0;
            while (mpscq_ring_write(r, m, 1 + (size_t)rand() % 1500) == MPSCQ_OK)
                wrote++;
            ck_assert_int_gt(wrote, 0);
            int got = 0;
            while (mpscq_ring_read(r, out, sizeof out, &len) == MPSCQ_OK)
                got++;
            ck_assert_int_eq(got, wrote);
        }
        mpscq_ring_detach(r);
    }
}
END_TEST

/* A wake-up that lands between the consumer's `sleeping` store and its
 * last look (here: a producer's FULL, which wakes a sleeping consumer)
 * must not leave it asleep for a message committed after. */
struct waiter {
    mpscq_ring_t *r;
    int rc;
    char c;
};
static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    size_t len;
    hk_me = 1;
    w->rc = mpscq_ring_read_wait(w->r, &w->c, 1, &len, -1);
    return NULL;
}

START_TEST(test_wake_before_last_look)
{
    mpscq_ring_t *r = new_ring(16384, 0);
    hk_arm(MPSCQ_HOOK_RING_PARK);
    struct waiter w = { r, -1, 0 };
    MPSCQ_HG_ATOMIC(&w, sizeof w);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, waiter_main, &w), 0);
    hk_wait();
    mpscq_ring_wake(r);                          /* a wake with nothing to read */
    hk_next(-1);
    ck_assert_int_eq(mpscq_ring_write(r, "m", 1), MPSCQ_OK);
    pthread_join(t, NULL);                       /* hangs if the wake-up was lost */
    mpscq_test_hook = NULL;
    ck_assert_int_eq(w.rc, MPSCQ_OK);
    ck_assert_int_eq(w.c, 'm');
    mpscq_ring_detach(r);
}
END_TEST

/* ---- one consumer at a time: MPSCQ_BUSY ---------------------------------------- */

/* A consumer call while another thread is inside one (here asleep in
 * read_wait, through the same handle and through another) returns
 * MPSCQ_BUSY and changes nothing: a held record stays held, the ring's
 * messages stay, and the sleeper gets its message afterwards. */
START_TEST(test_consumer_busy)
{
    mpscq_ring_t *r = new_ring(16384, 0), *b = NULL;
    ck_assert_int_eq(mpscq_ring_open_fd(&b, mpscq_ring_fd(r)), MPSCQ_OK);
    const void *d;
    size_t len;
    char c;
    ck_assert_int_eq(mpscq_ring_write(r, "p", 1), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_peek(b, &d, &len), MPSCQ_OK);   /* b holds "p" */
    hk_arm(MPSCQ_HOOK_RING_PARK);
    struct waiter w = { r, -1, 0 };
    MPSCQ_HG_ATOMIC(&w, sizeof w);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, waiter_main, &w), 0);
    hk_wait();                                   /* inside read_wait, about to sleep */
    ck_assert_int_eq(mpscq_ring_write(r, "q", 1), MPSCQ_OK);
    mpscq_ring_t *h[2] = { r, b };
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(mpscq_ring_read(h[i], &c, 1, &len), MPSCQ_BUSY);
        ck_assert_int_eq(mpscq_ring_read_wait(h[i], &c, 1, &len, 0), MPSCQ_BUSY);
        ck_assert_int_eq(mpscq_ring_read_wait(h[i], &c, 1, &len, 1000000), MPSCQ_BUSY);
        ck_assert_int_eq(mpscq_ring_read_wait(h[i], &c, 1, &len, -1), MPSCQ_BUSY);
        ck_assert_int_eq(mpscq_ring_peek_wait(h[i], &d, &len, -1), MPSCQ_BUSY);
    }
    ck_assert_int_eq(mpscq_ring_peek(r, &d, &len), MPSCQ_BUSY);
    ck_assert_int_eq(mpscq_ring_release(b), MPSCQ_BUSY);        /* still held */
    struct mpscq_ring_stats st;
    mpscq_ring_stats(r, &st);
    ck_assert_uint_eq(st.busy, 12);
    ck_assert_uint_eq(st.delivered, 1);
    hk_next(-1);
    pthread_join(t, NULL);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(w.rc, MPSCQ_OK);
    ck_assert_int_eq(w.c, 'q');
    ck_assert_int_eq(mpscq_ring_release(b), MPSCQ_OK);          /* the role is free */
    ck_assert_int_eq(mpscq_ring_read(b, &c, 1, &len), MPSCQ_EMPTY);
    ck_assert_int_eq(mpscq_ring_write(r, "s", 1), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_read(b, &c, 1, &len), MPSCQ_OK);
    ck_assert_int_eq(c, 's');
    ck_assert_uint_eq(atomic_load(&r->cs->owner), 0);
    mpscq_ring_detach(b);
    mpscq_ring_detach(r);
}
END_TEST

/* A consumer call from inside one on the same thread (a signal handler,
 * here a hook): MPSCQ_BUSY, and the outer call goes on. */
static mpscq_ring_t *nest_ring;
static _Atomic int nest_rc = -1;
static void nest_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    (void)t;
    if (where != MPSCQ_HOOK_RING_CONSUMER_IN || atomic_load(&nest_rc) != -1)
        return;
    char c;
    size_t len;
    atomic_store(&nest_rc, 0);                   /* once */
    atomic_store(&nest_rc, mpscq_ring_read(nest_ring, &c, 1, &len));
}
START_TEST(test_consumer_busy_nested)
{
    nest_ring = new_ring(16384, 0);
    ck_assert_int_eq(mpscq_ring_write(nest_ring, "n", 1), MPSCQ_OK);
    mpscq_test_hook = nest_hook;
    char c = 0;
    size_t len;
    int rc = mpscq_ring_read(nest_ring, &c, 1, &len);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(atomic_load(&nest_rc), MPSCQ_BUSY);
    ck_assert_int_eq(rc, MPSCQ_OK);
    ck_assert_int_eq(c, 'n');
    mpscq_ring_detach(nest_ring);
}
END_TEST

/* The role's owner word names a thread that is gone, or holds garbage a
 * faulty process wrote: the next consumer call takes the role.  A word
 * naming a live thread (this one's sibling) is BUSY; the same tid with
 * another start time is a reused tid, so gone. */
static void *idle_main(void *arg)
{
    int *fd = arg;
    /* Its own consumer word, to the test; then wait to be let go. */
    uint64_t w = mpscq_ring_self()->consumer;
    char c;
    if (write(fd[3], &w, sizeof w) == sizeof w)
        (void)!read(fd[0], &c, 1);
    return NULL;
}
START_TEST(test_consumer_owner_gone_or_garbage)
{
    mpscq_ring_t *r = new_ring(16384, 0);
    char c;
    size_t len;
    uint64_t gone[] = {
        UINT64_MAX,                                          /* garbage */
        RING_CONSUMER_WORD(0, 5),                            /* tid 0 */
        RING_CONSUMER_WORD((1u << 22) - 1, 0),               /* no such tid */
    };
    for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++) {
        atomic_store(&r->cs->owner, gone[i]);
        ck_assert_int_eq(mpscq_ring_read(r, &c, 1, &len), MPSCQ_EMPTY);
        ck_assert_uint_eq(atomic_load(&r->cs->owner), 0);
    }
    /* A live sibling thread's word: BUSY, the word left as it is. */
    int fd[4];
    ck_assert_int_eq(pipe(fd), 0);
    ck_assert_int_eq(pipe(fd + 2), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, idle_main, fd), 0);
    uint64_t sib;
    ck_assert_int_eq(read(fd[2], &sib, sizeof sib), sizeof sib);
    ck_assert_uint_ne(sib, mpscq_ring_self()->consumer);
    atomic_store(&r->cs->owner, sib);
    ck_assert_int_eq(mpscq_ring_read(r, &c, 1, &len), MPSCQ_BUSY);
    ck_assert_uint_eq(atomic_load(&r->cs->owner), sib);
    /* Its tid with another start time: a reused tid, so gone (only
     * where /proc gives start times: without, a tid is all there is). */
    if (sib & RING_CONSUMER_START_MASK) {
        atomic_store(&r->cs->owner, sib ^ 1);
        ck_assert_int_eq(mpscq_ring_read(r, &c, 1, &len), MPSCQ_EMPTY);
    }
    atomic_store(&r->cs->owner, 0);
    ck_assert_int_eq(write(fd[1], "x", 1), 1);
    pthread_join(t, NULL);
    for (int i = 0; i < 4; i++)
        close(fd[i]);
    ck_assert_int_eq(mpscq_ring_write(r, "m", 1), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_read(r, &c, 1, &len), MPSCQ_OK);
    ck_assert_int_eq(c, 'm');
    mpscq_ring_detach(r);
}
END_TEST

/* Two threads find the role's owner dead at once: one takes it, the other
 * then finds it live and gets MPSCQ_BUSY; never both inside.  Thread 1
 * stops after judging the owner dead; thread 2 takes the role and stops
 * inside; thread 1 goes on. */
static _Atomic int tk_stage;
static void takeover_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    (void)t;
    if (where == MPSCQ_HOOK_RING_CONSUMER_TAKEOVER && hk_me == 1 &&
        atomic_load(&tk_stage) == 0) {
        atomic_store(&tk_stage, 1);
        while (atomic_load(&tk_stage) != 3)
            sched_yield();
    } else if (where == MPSCQ_HOOK_RING_CONSUMER_IN && hk_me == 2 &&
               atomic_load(&tk_stage) == 1) {
        atomic_store(&tk_stage, 2);
        while (atomic_load(&tk_stage) != 4)
            sched_yield();
    }
}
struct taker {
    mpscq_ring_t *r;
    int me, rc;
    _Atomic int done;
};
static void *taker_main(void *arg)
{
    struct taker *k = arg;
    char c;
    size_t len;
    hk_me = k->me;
    k->rc = mpscq_ring_read(k->r, &c, 1, &len);
    atomic_store(&k->done, 1);
    return NULL;
}
START_TEST(test_consumer_takeover_race)
{
    mpscq_ring_t *r = new_ring(16384, 0);
    atomic_store(&r->cs->owner, RING_CONSUMER_WORD((1u << 22) - 1, 0));  /* dead */
    atomic_store(&tk_stage, 0);
    mpscq_test_hook = takeover_hook;
    struct taker k1 = { r, 1, -1, 0 }, k2 = { r, 2, -1, 0 };
    MPSCQ_HG_ATOMIC(&k1, sizeof k1);
    MPSCQ_HG_ATOMIC(&k2, sizeof k2);
    pthread_t t1, t2;
    ck_assert_int_eq(pthread_create(&t1, NULL, taker_main, &k1), 0);
    while (atomic_load(&tk_stage) != 1 && !atomic_load(&k1.done))
        sched_yield();                           /* 1 judged the owner dead */
    ck_assert_int_eq(atomic_load(&tk_stage), 1);
    ck_assert_int_eq(pthread_create(&t2, NULL, taker_main, &k2), 0);
    while (atomic_load(&tk_stage) != 2 && !atomic_load(&k2.done))
        sched_yield();                           /* 2 took the role, inside */
    ck_assert_int_eq(atomic_load(&tk_stage), 2);
    atomic_store(&tk_stage, 3);
    pthread_join(t1, NULL);
    ck_assert_int_eq(k1.rc, MPSCQ_BUSY);
    atomic_store(&tk_stage, 4);
    pthread_join(t2, NULL);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(k2.rc, MPSCQ_EMPTY);
    ck_assert_uint_eq(atomic_load(&r->cs->owner), 0);
    mpscq_ring_detach(r);
}
END_TEST


/* Stops at two points at once, each for its own thread (hk_me 1: the
 * pre-check, 2: the closer between its two steps, 3: a barrier at the
 * pre-check for every such thread). */
static _Atomic int st_pre, go_pre, st_close, go_close, bar_in, bar_go;
static void multi_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    (void)t;
    if (where == MPSCQ_HOOK_RING_PRECHECKED && hk_me == 1) {
        atomic_store(&st_pre, 1);
        while (!atomic_load(&go_pre))
            sched_yield();
    } else if (where == MPSCQ_HOOK_RING_CLOSING && hk_me == 2) {
        atomic_store(&st_close, 1);
        while (!atomic_load(&go_close))
            sched_yield();
    } else if (where == MPSCQ_HOOK_RING_PRECHECKED && hk_me == 3) {
        atomic_fetch_add(&bar_in, 1);
        while (!atomic_load(&bar_go))
            sched_yield();
    }
}
static void *closer_main(void *arg)
{
    hk_me = 2;
    mpscq_ring_close(arg);
    return NULL;
}
static void *pre_writer_main(void *arg)
{
    struct hwriter *w = arg;
    static const uint8_t m[100];
    hk_me = 1;
    w->rc = mpscq_ring_write(w->r, m, sizeof m);
    return NULL;
}

/* A claim refused after the close raises the consumer's limit past the
 * close position before the closer has stored it; once it is stored, an
 * open claim below it must not hold the close up. */
START_TEST(test_close_after_refused_claim)
{
    mpscq_ring_t *r = new_ring(16384, 0);
    atomic_store(&st_pre, 0);
    atomic_store(&go_pre, 0);
    atomic_store(&st_close, 0);
    atomic_store(&go_close, 0);
    mpscq_test_hook = multi_hook;
    struct holder h = { .r = r, .len = 10 };
    pthread_t ht, bt, ct;
    holder_start(&h, &ht);
    struct hwriter b = { r, -1 };
    MPSCQ_HG_ATOMIC(&b, sizeof b);
    ck_assert_int_eq(pthread_create(&bt, NULL, pre_writer_main, &b), 0);
    while (!atomic_load(&st_pre))
        sched_yield();
    ck_assert_int_eq(pthread_create(&ct, NULL, closer_main, r), 0);
    while (!atomic_load(&st_close))
        sched_yield();
    atomic_store(&go_pre, 1);
    pthread_join(bt, NULL);
    ck_assert_int_eq(b.rc, MPSCQ_CLOSED);
    uint8_t out[64];
    size_t len;
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_EMPTY);  /* not final yet */
    atomic_store(&go_close, 1);
    pthread_join(ct, NULL);
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_CLOSED);
    holder_finish(&h, ht);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
    ck_assert_uint_eq(len, 10);
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_CLOSED);
    mpscq_ring_detach(r);
}
END_TEST

/* Records of many chunks (max_message far above the chunk size) from
 * producers that all passed the pre-check at once: tail runs up to a
 * record each past what the consumer has seen, which is no corruption. */
struct big_writer {
    mpscq_ring_t *r;
    _Atomic int rc;
};
static void *big_writer_main(void *arg)
{
    struct big_writer *w = arg;
    static const uint8_t m[3888];
    hk_me = 3;
    atomic_store(&w->rc, mpscq_ring_write(w->r, m, sizeof m));
    return NULL;
}

START_TEST(test_records_longer_than_chunks_at_once)
{
    enum { NW = 10 };
    mpscq_ring_t *r = new_ring(8192, 3888);
    ck_assert_uint_gt(r->max_rec, 10 * r->S);
    atomic_store(&bar_in, 0);
    atomic_store(&bar_go, 0);
    mpscq_test_hook = multi_hook;
    struct big_writer w[NW];
    pthread_t t[NW];
    for (int i = 0; i < NW; i++) {
        w[i].r = r;
        atomic_store(&w[i].rc, -1);
        ck_assert_int_eq(pthread_create(&t[i], NULL, big_writer_main, &w[i]), 0);
    }
    while (atomic_load(&bar_in) < NW)
        sched_yield();
    atomic_store(&bar_go, 1);
    int ok = 0;
    for (int i = 0; i < NW; i++) {
        pthread_join(t[i], NULL);
        int rc = atomic_load(&w[i].rc);
        ck_assert(rc == MPSCQ_OK || rc == MPSCQ_FULL);
        ok += rc == MPSCQ_OK;
    }
    mpscq_test_hook = NULL;
    ck_assert_int_ge(ok, 1);
    static uint8_t out[3888];
    size_t len;
    for (int i = 0; i < ok; i++) {
        ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
        ck_assert_uint_eq(len, 3888);
    }
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_EMPTY);
    /* And the ring goes on. */
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(mpscq_ring_write(r, out, 1000), MPSCQ_OK);
        ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
    }
    mpscq_ring_detach(r);
}
END_TEST

/* ---- close ------------------------------------------------------------------ */

START_TEST(test_close)
{
    mpscq_ring_t *r = new_ring(16384, 0);
    uint8_t out[64];
    size_t len;
    void *buf;
    ck_assert_int_eq(mpscq_ring_write(r, "a", 1), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_write(r, "b", 1), MPSCQ_OK);
    mpscq_ring_close(r);
    mpscq_ring_close(r);   /* twice is harmless */
    ck_assert_int_eq(mpscq_ring_write(r, "c", 1), MPSCQ_CLOSED);
    ck_assert_int_eq(mpscq_ring_reserve(r, 1, &buf), MPSCQ_CLOSED);
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
    ck_assert_uint_eq(out[0], 'a');
    ck_assert_int_eq(mpscq_ring_read_wait(r, out, sizeof out, &len, -1), MPSCQ_OK);
    ck_assert_uint_eq(out[0], 'b');
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_CLOSED);
    ck_assert_int_eq(mpscq_ring_read_wait(r, out, sizeof out, &len, -1), MPSCQ_CLOSED);
    ck_assert_int_eq(mpscq_ring_read_wait(r, out, sizeof out, &len, 0), MPSCQ_CLOSED);
    mpscq_ring_detach(r);
}
END_TEST

START_TEST(test_close_with_open_claim)
{
    mpscq_ring_t *r = new_ring(16384, 0);
    struct holder h = { .r = r, .len = 3 };
    pthread_t t;
    holder_start(&h, &t);
    ck_assert_int_eq(mpscq_ring_write(r, "x", 1), MPSCQ_OK);
    mpscq_ring_close(r);
    uint8_t out[64];
    size_t len;
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
    ck_assert_uint_eq(out[0], 'x');
    /* The open claim does not hold the close up. */
    ck_assert_int_eq(mpscq_ring_read_wait(r, out, sizeof out, &len, -1), MPSCQ_CLOSED);
    /* Committed late, it is still delivered. */
    holder_finish(&h, t);
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
    ck_assert_uint_eq(len, 3);
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_CLOSED);
    mpscq_ring_detach(r);
}
END_TEST

/* ---- sleeping ---------------------------------------------------------------- */

START_TEST(test_read_wait_timeout)
{
    mpscq_ring_t *r = new_ring(16384, 0);
    uint8_t out[64];
    size_t len;
    ck_assert_int_eq(mpscq_ring_read_wait(r, out, sizeof out, &len, 0), MPSCQ_EMPTY);
    ck_assert_int_eq(mpscq_ring_read_wait(r, out, sizeof out, &len, 1000000), MPSCQ_TIMEOUT);
    ck_assert_int_eq(mpscq_ring_write(r, "z", 1), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_read_wait(r, out, sizeof out, &len, 1000000), MPSCQ_OK);
    mpscq_ring_detach(r);
}
END_TEST

struct sleeper {
    mpscq_ring_t *r;
    int n, rc_last;
    _Atomic int got;
};
static void *sleeper_main(void *arg)
{
    struct sleeper *s = arg;
    uint8_t out[64];
    size_t len;
    for (;;) {
        int rc = mpscq_ring_read_wait(s->r, out, sizeof out, &len, -1);
        if (rc != MPSCQ_OK) {
            s->rc_last = rc;
            return NULL;
        }
        if (len != 4 || memcmp(out, &(int){ atomic_load(&s->got) }, 4) != 0) {
            s->rc_last = -1;
            return NULL;
        }
        atomic_fetch_add(&s->got, 1);
    }
}

START_TEST(test_read_wait_woken_and_closed)
{
    mpscq_ring_t *r = new_ring(16384, 0);
    struct sleeper s = { .r = r, .n = (int)tu_scaled(2000, 100) };
    MPSCQ_HG_ATOMIC(&s, sizeof s);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, sleeper_main, &s), 0);
    for (int i = 0; i < s.n; i++) {
        ck_assert_int_eq(write_retry(r, &i, 4), MPSCQ_OK);
        /* Every other message: let the consumer catch up and sleep. */
        if (i & 1)
            while (atomic_load(&s.got) <= i)
                sched_yield();
    }
    while (atomic_load(&s.got) < s.n)
        sched_yield();
    mpscq_ring_close(r);   /* wakes it */
    pthread_join(t, NULL);
    ck_assert_int_eq(s.rc_last, MPSCQ_CLOSED);
    ck_assert_int_eq(atomic_load(&s.got), s.n);
    mpscq_ring_detach(r);
}
END_TEST

/* ---- threads: exact delivery, per-producer order -------------------------------- */

struct tprod {
    mpscq_ring_t *r;
    uint32_t id, n;
    size_t maxlen;
    int rc;
};
static void *tprod_main(void *arg)
{
    struct tprod *p = arg;
    uint8_t b[512];
    for (uint32_t s = 0; s < p->n; s++) {
        size_t len = msg_len(p->id, s, p->maxlen);
        if (s % 3 == 0) {
            void *buf;
            int rc;
            while ((rc = mpscq_ring_reserve(p->r, len, &buf)) == MPSCQ_FULL)
                sched_yield();
            if (rc) {
                p->rc = rc;
                return NULL;
            }
            msg_fill(buf, p->id, s, len);
            if ((p->rc = mpscq_ring_commit(p->r, buf)) != MPSCQ_OK)
                return NULL;
        } else {
            msg_fill(b, p->id, s, len);
            if ((p->rc = write_retry(p->r, b, len)) != MPSCQ_OK)
                return NULL;
        }
    }
    return NULL;
}

/* Read `total` messages from producers 0 .. np-1 and check them. */
static void consume_verify(mpscq_ring_t *r, unsigned np, uint32_t per, size_t maxlen)
{
    uint32_t *next = calloc(np, sizeof *next);
    uint8_t b[512];
    size_t len;
    uint64_t total = (uint64_t)np * per;
    for (uint64_t got = 0; got < total;) {
        int rc = mpscq_ring_read_wait(r, b, sizeof b, &len, -1);
        ck_assert_int_eq(rc, MPSCQ_OK);
        struct msg_head h;
        ck_assert_msg(msg_check(b, len, maxlen, &h), "message %llu torn (len %zu)",
                      (unsigned long long)got, len);
        ck_assert_uint_lt(h.producer, np);
        ck_assert_uint_eq(h.seq, next[h.producer]);   /* per-producer FIFO, no loss */
        next[h.producer]++;
        got++;
    }
    ck_assert_int_eq(mpscq_ring_read(r, b, sizeof b, &len), MPSCQ_EMPTY);
    free(next);
}

START_TEST(test_threads_exact)
{
    enum { NP = 4 };
    mpscq_ring_t *r = new_ring(8192, 256);   /* small: FULL is frequent */
    uint32_t per = (uint32_t)tu_scaled(20000, 500);
    struct tprod p[NP];
    pthread_t t[NP];
    for (unsigned i = 0; i < NP; i++) {
        p[i] = (struct tprod){ r, i, per, 256, 0 };
        ck_assert_int_eq(pthread_create(&t[i], NULL, tprod_main, &p[i]), 0);
    }
    consume_verify(r, NP, per, 256);
    for (unsigned i = 0; i < NP; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(p[i].rc, MPSCQ_OK);
    }
    mpscq_ring_detach(r);
}
END_TEST

/* More producer threads than MPSCQ_RING_PRODUCERS_MAX at once: NOMEM for
 * the rest, and an exited thread's slot is free again. */
struct slotter {
    mpscq_ring_t *r;
    _Atomic int *go;
    _Atomic int rc;
};
static void *slotter_main(void *arg)
{
    struct slotter *s = arg;
    void *buf;
    s->rc = mpscq_ring_reserve(s->r, 1, &buf);
    if (s->rc == MPSCQ_OK) {
        while (!atomic_load(s->go))
            sched_yield();
        mpscq_ring_commit(s->r, buf);
    }
    return NULL;
}

START_TEST(test_producer_slots)
{
    enum { N = MPSCQ_RING_PRODUCERS_MAX + 4 };
    mpscq_ring_t *r = new_ring(1 << 20, 0);
    static struct slotter s[N];
    static pthread_t t[N];
    _Atomic int go = 0;
    int ok = 0, nomem = 0;
    for (int i = 0; i < N; i++) {
        s[i] = (struct slotter){ r, &go, -1 };
        MPSCQ_HG_ATOMIC(&s[i], sizeof s[i]);
        ck_assert_int_eq(pthread_create(&t[i], NULL, slotter_main, &s[i]), 0);
        /* Each thread has its reserve answered before the next starts. */
        while (atomic_load(&s[i].rc) == -1)
            sched_yield();
    }
    for (int i = 0; i < N; i++) {
        ok += s[i].rc == MPSCQ_OK;
        nomem += s[i].rc == MPSCQ_NOMEM;
    }
    ck_assert_int_eq(ok, MPSCQ_RING_PRODUCERS_MAX);
    ck_assert_int_eq(nomem, N - MPSCQ_RING_PRODUCERS_MAX);
    atomic_store(&go, 1);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    ck_assert_uint_eq(drain(r), MPSCQ_RING_PRODUCERS_MAX);
    /* Their slots were given back at thread exit: this thread gets one. */
    ck_assert_int_eq(mpscq_ring_write(r, "k", 1), MPSCQ_OK);
    ck_assert_uint_eq(drain(r), 1);
    mpscq_ring_detach(r);
}
END_TEST

/* ---- processes ---------------------------------------------------------------- */

static void child_ok(pid_t pid)
{
    int status;
    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
}

/* A child producer: n messages of producer id through the parent's handle. */
static int child_produce(mpscq_ring_t *r, uint32_t id, uint32_t n, size_t maxlen)
{
    struct tprod p = { r, id, n, maxlen, 0 };
    tprod_main(&p);
    return p.rc == MPSCQ_OK ? 0 : 10 + p.rc;
}

START_TEST(test_processes_exact)
{
    if (!fork_ok())
        return;
    enum { NP = 4 };
    mpscq_ring_t *r = new_ring(16384, 256);
    uint32_t per = (uint32_t)tu_scaled(20000, 500);
    pid_t pid[NP];
    for (unsigned i = 0; i < NP; i++) {
        pid[i] = fork();
        if (pid[i] == 0)
            _exit(child_produce(r, i, per, 256));
    }
    consume_verify(r, NP, per, 256);
    for (unsigned i = 0; i < NP; i++)
        child_ok(pid[i]);
    mpscq_ring_detach(r);
}
END_TEST

/* Named: create races, open by name and by descriptor, the mode. */
START_TEST(test_named_create_race_and_mode)
{
    if (!fork_ok())
        return;
    char name[64];
    ring_name(name, sizeof name, "race");
    mpscq_ring_unlink(name);
    int pfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    enum { NC = 4 };
    pid_t pid[NC];
    for (int i = 0; i < NC; i++) {
        pid[i] = fork();
        if (pid[i] == 0) {
            char c;
            close(pfd[1]);
            if (read(pfd[0], &c, 1) != 0)   /* the start line: EOF */
                _exit(9);
            mpscq_ring_t *r;
            int rc = mpscq_ring_create(&r, name, NULL);
            if (rc == MPSCQ_OK)
                _exit(mpscq_ring_write(r, &i, sizeof i) == MPSCQ_OK ? 0 : 8);
            _exit(rc == MPSCQ_EXIST ? 1 : 7);
        }
    }
    close(pfd[0]);
    close(pfd[1]);   /* go */
    int created = 0, exist = 0;
    for (int i = 0; i < NC; i++) {
        int st;
        ck_assert_int_eq(waitpid(pid[i], &st, 0), pid[i]);
        ck_assert(WIFEXITED(st));
        created += WEXITSTATUS(st) == 0;
        exist += WEXITSTATUS(st) == 1;
    }
    ck_assert_int_eq(created, 1);
    ck_assert_int_eq(exist, NC - 1);
    /* The creator's message is there for whoever opens the name. */
    mpscq_ring_t *r;
    ck_assert_int_eq(mpscq_ring_open(&r, name), MPSCQ_OK);
    int who = -1;
    size_t len;
    ck_assert_int_eq(mpscq_ring_read(r, &who, sizeof who, &len), MPSCQ_OK);
    ck_assert_int_ge(who, 0);
    ck_assert_int_lt(who, NC);
    struct stat st;
    ck_assert_int_eq(fstat(mpscq_ring_fd(r), &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);   /* mode 0 = 0600 */
    mpscq_ring_t *again;
    ck_assert_int_eq(mpscq_ring_create(&again, name, NULL), MPSCQ_EXIST);
    mpscq_ring_detach(r);
    ck_assert_int_eq(mpscq_ring_unlink(name), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_open(&r, name), MPSCQ_INVAL);

    /* An explicit mode is applied as given, whatever the umask. */
    mode_t old = umask(077);
    mpscq_ring_config cfg;
    mpscq_ring_config_init(&cfg);
    cfg.mode = 0644;
    ck_assert_int_eq(mpscq_ring_create(&r, name, &cfg), MPSCQ_OK);
    umask(old);
    ck_assert_int_eq(fstat(mpscq_ring_fd(r), &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0644);
    mpscq_ring_t *viafd;
    ck_assert_int_eq(mpscq_ring_open_fd(&viafd, mpscq_ring_fd(r)), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_write(viafd, "v", 1), MPSCQ_OK);
    char c;
    ck_assert_int_eq(mpscq_ring_read(r, &c, 1, &len), MPSCQ_OK);
    ck_assert_int_eq(c, 'v');
    mpscq_ring_detach(viafd);
    mpscq_ring_detach(r);
    ck_assert_int_eq(mpscq_ring_unlink(name), MPSCQ_OK);
}
END_TEST

/* A child that reserves, reports, and stops or waits to be killed. */
static pid_t child_reserve_then(mpscq_ring_t *r, size_t len, int stop)
{
    int pfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        void *buf;
        int rc = mpscq_ring_reserve(r, len, &buf);
        if (rc == MPSCQ_OK)
            memset(buf, 'C', len);
        if (write(pfd[1], &rc, sizeof rc) != sizeof rc)
            _exit(3);
        if (stop)
            raise(SIGSTOP);
        else
            for (;;)
                pause();
        _exit(mpscq_ring_commit(r, buf) == MPSCQ_OK ? 0 : 4);
    }
    close(pfd[1]);
    int rc = -1;
    ck_assert_int_eq(read(pfd[0], &rc, sizeof rc), (ssize_t)sizeof rc);
    close(pfd[0]);
    ck_assert_int_eq(rc, MPSCQ_OK);
    return pid;
}

START_TEST(test_sigstop_between_reserve_and_commit)
{
    if (!fork_ok())
        return;
    unsigned cap;
    mpscq_ring_t *r = lapped_ring(&cap);
    pid_t pid = child_reserve_then(r, 200, 1);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, WUNTRACED), pid);
    ck_assert(WIFSTOPPED(st));
    /* Three capacities through the ring past the stopped claim. */
    push_through(r, cap, 3);
    ck_assert_int_eq(kill(pid, SIGCONT), 0);
    child_ok(pid);
    uint8_t out[MPSCQ_RING_MAX_MESSAGE_DEFAULT];
    size_t len;
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
    ck_assert_uint_eq(len, 200);
    ck_assert_uint_eq(out[0], 'C');
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_EMPTY);
    mpscq_ring_detach(r);
}
END_TEST

START_TEST(test_sigkill_between_reserve_and_commit)
{
    if (!fork_ok())
        return;
    for (int reap = 0; reap < 2; reap++) {
        mpscq_ring_t *r = new_ring(65536, 0);
        unsigned cap = fill_100(r);
        ck_assert_uint_eq(drain(r), cap);
        /* Committed around the claim: before and after. */
        ck_assert_int_eq(mpscq_ring_write(r, "before", 6), MPSCQ_OK);
        pid_t pid = child_reserve_then(r, 200, 0);
        ck_assert_int_eq(mpscq_ring_write(r, "after", 5), MPSCQ_OK);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        int st;
        if (reap) {
            ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        } else {
            /* A zombie (not reaped yet) is dead too. */
            siginfo_t si;
            ck_assert_int_eq(waitid(P_PID, pid, &si, WEXITED | WNOWAIT), 0);
        }
        uint8_t out[MPSCQ_RING_MAX_MESSAGE_DEFAULT];
        size_t len;
        ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
        ck_assert_int_eq(memcmp(out, "before", 6), 0);
        ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
        ck_assert_int_eq(memcmp(out, "after", 5), 0);
        /* The dead claim is never delivered, and the ring's whole
         * capacity comes back (after the consumer's sweep). */
        for (int i = 0; i < 64; i++)
            ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_EMPTY);
        unsigned best = 0;
        for (int lap = 0; lap < 4; lap++) {
            unsigned n = fill_100(r);
            if (n > best)
                best = n;
            ck_assert_uint_eq(drain(r), n);
            for (int i = 0; i < 64; i++)
                ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_EMPTY);
        }
        ck_assert_uint_ge(best * 100, cap * 85);
        ck_assert_uint_ge(r->cs->dropped_claims, 1);   /* the sweep dropped it */
        struct mpscq_ring_stats rs;
        mpscq_ring_stats(r, &rs);
        ck_assert_uint_eq(rs.dropped_claims, r->cs->dropped_claims);
        if (!reap)
            ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        mpscq_ring_detach(r);
    }
}
END_TEST

/* A process whose main thread has exited (its /proc state is Z) while
 * another thread of it holds a claim: that owner is alive, its claim is
 * kept, and its commit is delivered. */
static int zfd_go[2], zfd_rep[2];
static mpscq_ring_t *zring;
static void *zworker(void *arg)
{
    (void)arg;
    void *buf;
    int rc = mpscq_ring_reserve(zring, 30, &buf);
    if (rc == MPSCQ_OK)
        memset(buf, 'Z', 30);
    if (write(zfd_rep[1], &rc, sizeof rc) != sizeof rc)
        _exit(3);
    char c;
    if (read(zfd_go[0], &c, 1) != 1)
        _exit(4);
    _exit(mpscq_ring_commit(zring, buf) == MPSCQ_OK ? 0 : 5);
}

START_TEST(test_owner_alive_after_main_thread_exit)
{
    /* Not under Valgrind: the child's main thread leaves with the parent's
     * test state on its stack, which memcheck then calls lost. */
    if (!fork_ok() || tu_under_valgrind())
        return;
    zring = new_ring(65536, 0);
    ck_assert_int_eq(pipe(zfd_go), 0);
    ck_assert_int_eq(pipe(zfd_rep), 0);
    pid_t pid = fork();
    if (pid == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, zworker, NULL) != 0)
            _exit(6);
        pthread_exit(NULL);   /* the main thread goes; the worker stays */
    }
    int rc = -1;
    ck_assert_int_eq(read(zfd_rep[0], &rc, sizeof rc), (ssize_t)sizeof rc);
    ck_assert_int_eq(rc, MPSCQ_OK);
    /* Until the main thread has gone: the process's state is then Z. */
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    for (;;) {
        char st[512] = "";
        FILE *f = fopen(path, "r");
        if (!f)
            break;                 /* no /proc: nothing to wait for */
        size_t n = fread(st, 1, sizeof st - 1, f);
        fclose(f);
        st[n] = 0;
        char *p = strrchr(st, ')');
        if (p && p[1] == ' ' && p[2] == 'Z')
            break;
        sched_yield();
    }
    /* Traffic past the claim, with sweeps (EMPTY reads). */
    ck_assert_int_eq(mpscq_ring_write(zring, "x", 1), MPSCQ_OK);
    uint8_t out[64];
    size_t len;
    ck_assert_int_eq(mpscq_ring_read(zring, out, sizeof out, &len), MPSCQ_OK);
    for (int i = 0; i < 64; i++)
        ck_assert_int_eq(mpscq_ring_read(zring, out, sizeof out, &len), MPSCQ_EMPTY);
    ck_assert_uint_eq(zring->cs->dropped_claims, 0);
    ck_assert_int_eq(write(zfd_go[1], "g", 1), 1);
    child_ok(pid);
    ck_assert_int_eq(mpscq_ring_read(zring, out, sizeof out, &len), MPSCQ_OK);
    ck_assert_uint_eq(len, 30);
    ck_assert_uint_eq(out[0], 'Z');
    for (int i = 0; i < 4; i++)
        close(i < 2 ? zfd_go[i] : zfd_rep[i - 2]);
    mpscq_ring_detach(zring);
}
END_TEST

static int zfd_park = -1;
static mpscq_ring_t *zring_park;
/* In a child: at read_wait's last look before sleeping, send the role's
 * owner word (this thread's) to the parent. */
static void park_tell_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    (void)t;
    if (where == MPSCQ_HOOK_RING_PARK && zfd_park >= 0) {
        uint64_t w = atomic_load(&zring_park->cs->owner);
        ssize_t n = write(zfd_park, &w, sizeof w);
        (void)n;
        zfd_park = -1;
    }
}

/* A consumer process stopped, then killed, inside read_wait (asleep, the
 * role held): stopped, it still holds the role (BUSY); killed, the next
 * call from another process takes the role and reads on. */
START_TEST(test_consumer_killed_inside_read_wait)
{
    if (!fork_ok())
        return;
    mpscq_ring_t *r = new_ring(16384, 0);
    char c;
    size_t len;
    /* The parent was the consumer before the fork: the child's word must
     * be its own, not the parent thread's it inherited. */
    ck_assert_int_eq(mpscq_ring_read(r, &c, 1, &len), MPSCQ_EMPTY);
    int pfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        /* Hooks are this process's own: tell the parent when inside. */
        zfd_park = pfd[1];
        zring_park = r;
        mpscq_test_hook = park_tell_hook;
        mpscq_ring_read_wait(r, &c, 1, &len, -1);
        _exit(7);                                /* never woken: killed */
    }
    close(pfd[1]);
    uint64_t w = 0;
    ck_assert_int_eq(read(pfd[0], &w, sizeof w), sizeof w);   /* inside, about to sleep */
    ck_assert_uint_eq(w >> RING_CONSUMER_TID_SHIFT, (uint64_t)pid);  /* its main thread */
    ck_assert_int_eq(mpscq_ring_read(r, &c, 1, &len), MPSCQ_BUSY);
    ck_assert_int_eq(kill(pid, SIGSTOP), 0);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, WUNTRACED), pid);
    ck_assert(WIFSTOPPED(st));
    ck_assert_int_eq(mpscq_ring_read(r, &c, 1, &len), MPSCQ_BUSY);
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFSIGNALED(st));
    ck_assert_int_eq(mpscq_ring_read(r, &c, 1, &len), MPSCQ_EMPTY);
    ck_assert_int_eq(mpscq_ring_write(r, "k", 1), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_read_wait(r, &c, 1, &len, -1), MPSCQ_OK);
    ck_assert_int_eq(c, 'k');
    struct mpscq_ring_stats stats;
    mpscq_ring_stats(r, &stats);
    ck_assert_uint_eq(stats.busy, 2);
    close(pfd[0]);
    mpscq_ring_detach(r);
}
END_TEST

/* exec from a thread other than the main one, while the main thread is
 * inside read_wait: the kernel gives the new image the main thread's tid
 * and start time, so the role's word names it, alive.  Its own first
 * consumer call must take the role (it is inside no call), and not find
 * itself "nested" for ever.  The new image is this program again, told
 * by the environment to read the ring through an inherited descriptor
 * (exec_image below). */
#define EXEC_ENV "MPSCQ_TEST_EXEC_RING_FD"
static int exec_image(const char *fdstr)
{
    mpscq_ring_t *r = NULL;
    if (mpscq_ring_open_fd(&r, atoi(fdstr)) != MPSCQ_OK)
        return 2;
    char c;
    size_t len;
    int rc = mpscq_ring_read(r, &c, 1, &len);
    int rc2 = mpscq_ring_read(r, &c, 1, &len);   /* and again: the role was given back */
    int owner_free = atomic_load(&r->cs->owner) == 0;
    mpscq_ring_detach(r);
    return rc == MPSCQ_EMPTY && rc2 == MPSCQ_EMPTY && owner_free ? 0 : 10 + rc;
}
static _Atomic int exec_go;
static mpscq_ring_t *exec_ring;
static void exec_park_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    (void)t;
    if (where == MPSCQ_HOOK_RING_PARK)
        atomic_store(&exec_go, 1);
}
static char exec_path[4096];
static void *exec_thread_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&exec_go))
        sched_yield();
    int fd = dup(mpscq_ring_fd(exec_ring));      /* without close-on-exec */
    char buf[16];
    snprintf(buf, sizeof buf, "%d", fd);
    setenv(EXEC_ENV, buf, 1);
    execl(exec_path, "check_ring", (char *)NULL);
    _exit(3);
}
START_TEST(test_consumer_exec_from_thread)
{
    if (!fork_ok())
        return;
    /* The program's path: readlink, not exec of /proc/self/exe, which
     * under Valgrind is Valgrind's own tool. */
    ssize_t n = readlink("/proc/self/exe", exec_path, sizeof exec_path - 1);
    ck_assert_int_gt(n, 0);
    exec_path[n] = 0;
    exec_ring = new_ring(16384, 0);
    pid_t pid = fork();
    if (pid == 0) {
        atomic_store(&exec_go, 0);
        mpscq_test_hook = exec_park_hook;
        pthread_t t;
        if (pthread_create(&t, NULL, exec_thread_main, NULL) != 0)
            _exit(4);
        char c;
        size_t len;
        mpscq_ring_read_wait(exec_ring, &c, 1, &len, -1);   /* ended by the exec */
        _exit(5);
    }
    child_ok(pid);
    char c;
    size_t len;
    ck_assert_int_eq(mpscq_ring_read(exec_ring, &c, 1, &len), MPSCQ_EMPTY);
    mpscq_ring_detach(exec_ring);
}
END_TEST

START_TEST(test_sleeping_consumer_across_processes)
{
    if (!fork_ok())
        return;
    mpscq_ring_t *r = new_ring(16384, 0);
    int pfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        close(pfd[1]);
        /* Each byte from the parent: write one message; EOF: close. */
        int i = 0;
        while (read(pfd[0], &c, 1) == 1) {
            if (mpscq_ring_write(r, &i, sizeof i) != MPSCQ_OK)
                _exit(5);
            i++;
        }
        mpscq_ring_close(r);
        _exit(0);
    }
    close(pfd[0]);
    int n = (int)tu_scaled(200, 20);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(write(pfd[1], "g", 1), 1);
        int v = -1;
        size_t len;
        ck_assert_int_eq(mpscq_ring_read_wait(r, &v, sizeof v, &len, -1), MPSCQ_OK);
        ck_assert_int_eq(v, i);
    }
    close(pfd[1]);
    int v;
    size_t len;
    ck_assert_int_eq(mpscq_ring_read_wait(r, &v, sizeof v, &len, -1), MPSCQ_CLOSED);
    child_ok(pid);
    mpscq_ring_detach(r);
}
END_TEST

/* ---- attaching to what is not a ring ----------------------------------------------- */

static int memfd_with(const void *bytes, size_t n)
{
    int fd = memfd_create("check-ring", MFD_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, bytes, n), (ssize_t)n);
    return fd;
}

START_TEST(test_open_checks)
{
    mpscq_ring_t *r = new_ring(65536, 0), *o;
    ck_assert_int_eq(mpscq_ring_write(r, "kept", 4), MPSCQ_OK);
    struct stat st;
    ck_assert_int_eq(fstat(mpscq_ring_fd(r), &st), 0);
    size_t n = (size_t)st.st_size;
    uint8_t *copy = malloc(n);
    ck_assert_int_eq(pread(mpscq_ring_fd(r), copy, n, 0), (ssize_t)n);

    /* A byte-exact copy opens, with the message in it. */
    int fd = memfd_with(copy, n);
    ck_assert_int_eq(mpscq_ring_open_fd(&o, fd), MPSCQ_OK);
    close(fd);
    char b[16];
    size_t len;
    ck_assert_int_eq(mpscq_ring_read(o, b, sizeof b, &len), MPSCQ_OK);
    ck_assert_int_eq(memcmp(b, "kept", 4), 0);
    mpscq_ring_detach(o);

    /* Truncated copies. */
    size_t cuts[] = { n - 1, n / 2, 8192, 4096, 200 };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        fd = memfd_with(copy, cuts[i]);
        ck_assert_int_eq(mpscq_ring_open_fd(&o, fd), MPSCQ_INVAL);
        close(fd);
    }
    /* Random bytes. */
    uint8_t *rnd = malloc(n);
    srand(12345);
    for (size_t i = 0; i < n; i++)
        rnd[i] = (uint8_t)rand();
    fd = memfd_with(rnd, n);
    ck_assert_int_eq(mpscq_ring_open_fd(&o, fd), MPSCQ_INVAL);
    close(fd);
    /* Another layout version, another size field. */
    struct ring_header *h = (struct ring_header *)copy;
    h->version++;
    fd = memfd_with(copy, n);
    ck_assert_int_eq(mpscq_ring_open_fd(&o, fd), MPSCQ_INVAL);
    close(fd);
    h->version--;
    h->chunk_bytes += 16;
    fd = memfd_with(copy, n);
    ck_assert_int_eq(mpscq_ring_open_fd(&o, fd), MPSCQ_INVAL);
    close(fd);
    free(rnd);
    free(copy);
    mpscq_ring_detach(r);
}
END_TEST

/* ---- a corrupted region ---------------------------------------------------------------- */

/* A record header with a bad length is skipped (counted), the next one
 * is delivered. */
START_TEST(test_corrupt_record_skipped)
{
    mpscq_ring_t *r = new_ring(65536, 0);
    ck_assert_int_eq(mpscq_ring_write(r, "bad", 3), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_write(r, "good", 4), MPSCQ_OK);
    struct ring_rec *rec = (struct ring_rec *)ring_data(r, 0);
    rec->len = 0x7fffffff;
    char b[16];
    size_t len;
    ck_assert_int_eq(mpscq_ring_read(r, b, sizeof b, &len), MPSCQ_OK);
    ck_assert_uint_eq(len, 4);
    ck_assert_int_eq(memcmp(b, "good", 4), 0);
    ck_assert_uint_eq(r->cs->corrupt, 1);
    struct mpscq_ring_stats st;
    mpscq_ring_stats(r, &st);
    ck_assert_uint_eq(st.corrupt, 1);
    ck_assert_uint_eq(st.delivered, 1);
    mpscq_ring_detach(r);
}
END_TEST

/* A limit written far past the head (a faulty process; found by a
 * review): the first scan runs on the stored limit before any tail load,
 * and walked one refused chunk a step up to it (2^40: 1.5e8 chunks, 3 s;
 * 2^62: months).  The consumer state is checked first: INVAL at once,
 * nothing walked. */
START_TEST(test_corrupt_limit_far_ahead)
{
    mpscq_ring_t *r = new_ring(16384, 0);
    uint8_t out[64];
    size_t len;
    struct ring_consumer *cs = r->cs;
    cs->head = r->K * r->S;
    cs->limit = cs->head + ((uint64_t)1 << 32);
    uint64_t refused = cs->refused_chunks;
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_INVAL);
    ck_assert_uint_eq(cs->refused_chunks, refused);
    /* A limit just within reach is no corruption. */
    cs->head = 0;
    cs->limit = 0;
    ck_assert_int_eq(mpscq_ring_write(r, "ok", 2), MPSCQ_OK);
    ck_assert_int_eq(mpscq_ring_read(r, out, sizeof out, &len), MPSCQ_OK);
    ck_assert_uint_eq(len, 2);
    mpscq_ring_detach(r);
}
END_TEST

/* Random words over the shared parts (consumer state, gaps, map, state
 * bytes, headers): the consumer stays inside the mapping (ASan and
 * Valgrind watch) and answers with a status. */
START_TEST(test_corrupt_region_fuzz)
{
    unsigned iters = (unsigned)tu_scaled(300, 30);
    srand(777);
    for (unsigned it = 0; it < iters; it++) {
        mpscq_ring_t *r = new_ring(16384, 200);
        uint8_t m[200];
        for (int i = 0; i < 20; i++)
            mpscq_ring_write(r, m, 1 + (size_t)rand() % 200);
        void *open_buf;
        mpscq_ring_reserve(r, 50, &open_buf);
        for (int i = 0; i < 5; i++)
            mpscq_ring_write(r, m, 10);
        uint8_t out[256];
        size_t len;
        mpscq_ring_read(r, out, sizeof out, &len);
        /* Scribble. */
        uint8_t *lo = r->base + r->hdr->off_shared, *hi = r->base + r->size;
        for (int k = 0; k < 1 + rand() % 16; k++) {
            uint8_t *p = lo + (size_t)rand() % (size_t)(hi - lo - 8);
            uint64_t v = (uint64_t)rand() << 33 ^ (uint64_t)rand() << 7 ^ (uint64_t)rand();
            if (rand() & 1)
                v &= 0xffff;
            memcpy(p, &v, 8);
        }
        for (int i = 0; i < 50; i++) {
            int rc = mpscq_ring_read(r, out, sizeof out, &len);
            ck_assert(rc == MPSCQ_OK || rc == MPSCQ_EMPTY || rc == MPSCQ_INVAL || rc == MPSCQ_CLOSED);
            if (rc == MPSCQ_OK)
                ck_assert_uint_le(len, 200);
            mpscq_ring_write(r, m, 1 + (size_t)rand() % 200);
        }
        mpscq_ring_commit(r, open_buf);
        mpscq_ring_detach(r);
    }
}
END_TEST

/* ---- the fast paths' two builds ------------------------------------------ */

/* The producer fast paths (claim, publish, write) have a C twin and, in
 * an x86-64 build, a NASM one; the test library dispatches through
 * mpscq_impl (arch.h), which starts at the C twins.  Both must leave the
 * region byte for byte the same: every length from 1 to 1100 written
 * (inline copies of every size, and memcpy above 256 bytes in the NASM
 * write), then reserved and committed, each read back at once so that
 * records wrap around the chunks and the ring, some past a chunk's end
 * into its spill area. */
static void fill_region(const struct mpscq_impl *impl, uint8_t *snap, size_t *size)
{
    const struct mpscq_impl *saved = mpscq_impl;
    mpscq_impl = impl;
    mpscq_ring_t *r = new_ring(32768, 1100);
    static uint8_t in[1100], out[1100];
    size_t got;
    for (int round = 0; round < 2; round++) {
        for (size_t len = 1; len <= 1100; len++) {
            for (size_t i = 0; i < len; i++)
                in[i] = (uint8_t)(len * 7 + i * 13 + round);
            if (round == 0) {
                ck_assert_int_eq(mpscq_ring_write(r, in, len), MPSCQ_OK);
            } else {
                void *b;
                ck_assert_int_eq(mpscq_ring_reserve(r, len, &b), MPSCQ_OK);
                memcpy(b, in, len);
                ck_assert_int_eq(mpscq_ring_commit(r, b), MPSCQ_OK);
            }
            ck_assert_int_eq(mpscq_ring_read(r, out, len, &got), MPSCQ_OK);
            ck_assert_uint_eq(got, len);
            ck_assert_int_eq(memcmp(in, out, len), 0);
        }
    }
    ck_assert_uint_eq(r->cs->corrupt, 0);
    /* Closed: the fast paths answer CLOSED through their continuations. */
    mpscq_ring_close(r);
    ck_assert_int_eq(mpscq_ring_write(r, in, 10), MPSCQ_CLOSED);
    void *b;
    ck_assert_int_eq(mpscq_ring_reserve(r, 10, &b), MPSCQ_CLOSED);
    *size = r->size;
    memcpy(snap, r->base, r->size);
    mpscq_ring_detach(r);
    mpscq_impl = saved;
}

START_TEST(test_fast_paths_same_region)
{
#ifdef MPSCQ_HAVE_ASM
    size_t na, nc;
    uint8_t *a = malloc(1 << 20), *c = malloc(1 << 20);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(c);
    fill_region(&mpscq_impl_base, c, &nc);
    fill_region(&mpscq_impl_asm, a, &na);
    ck_assert_uint_eq(na, nc);
    ck_assert_uint_le(na, 1 << 20);
    for (size_t i = 0; i < na; i++)
        if (a[i] != c[i])
            ck_abort_msg("the regions differ at byte %zu: asm %u, C %u", i, a[i], c[i]);
    free(a);
    free(c);
#else
    /* A C-only build: the C twin alone, which must still deliver all. */
    static uint8_t c[1 << 20];
    size_t nc;
    fill_region(&mpscq_impl_base, c, &nc);
#endif
}
END_TEST


/* ring_chunk (a multiply for x / S) against the division, for S over
 * the whole range a layout can give (16 .. about 1.1e8, at bytes 2^40 and
 * max_message 2^24), positions near multiples of S and at random. */
START_TEST(test_chunk_division)
{
    struct mpscq_ring fake;
    memset(&fake, 0, sizeof fake);
    uint64_t seed = 88172645463325252u;
    for (uint64_t s = 16; s <= (1u << 27); s += s < 4096 ? 16 : 16 * (s / 4096)) {
        fake.S = s;
        fake.s_inv = UINT64_MAX / s;
        for (int i = 0; i < 64; i++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            uint64_t x = seed >> (1 + (i & 31));           /* below 2^63 */
            uint64_t near = (x / s) * s;
            uint64_t xs[] = { x, near, near ? near - 1 : 0, near + 1, s, s - 1,
                              (UINT64_C(1) << 63) - 1 - (uint64_t)i, (UINT64_C(1) << 63) + x };
            for (size_t k = 0; k < sizeof xs / sizeof xs[0]; k++) {
                ck_assert_uint_eq(ring_chunk(&fake, xs[k]), xs[k] / s);
                ck_assert_uint_eq(ring_off(&fake, xs[k]), xs[k] % s);
            }
        }
    }
}
END_TEST

static Suite *ring_suite(void)
{
    Suite *s = suite_create("ring");
    TCase *tc = tcase_create("api");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_config_and_args);
    tcase_add_test(tc, test_chunk_division);
    tcase_add_test(tc, test_roundtrip_every_size);
    tcase_add_test(tc, test_max_message_exact);
    tcase_add_test(tc, test_small_buffer_keeps_message);
    tcase_add_test(tc, test_peek_contract);
    tcase_add_test(tc, test_peek_passed_claim);
    tcase_add_test(tc, test_peek_released_by_failed_read);
    tcase_add_test(tc, test_peek_holds_its_chunk);
    tcase_add_test(tc, test_peek_abandoned_by_consumer);
    tcase_add_test(tc, test_peek_gap_holds);
    tcase_add_test(tc, test_peek_stale_release);
    tcase_add_test(tc, test_peek_garbage_held);
    tcase_add_test(tc, test_peek_lost_hold);
    tcase_add_test(tc, test_spill_not_left_as_gap);
    tcase_add_loop_test(tc, test_spill_across_chunks_pinned, 0, 3);
    tcase_add_loop_test(tc, test_spill_longer_than_m_chunks, 0, 3);
    tcase_add_test(tc, test_garbage_length_head_within_limit);
    tcase_add_test(tc, test_stats);
    tcase_add_test(tc, test_write_wait);
    tcase_add_test(tc, test_write_wait_room_before_sleep);
    tcase_add_test(tc, test_consumer_busy);
    tcase_add_test(tc, test_consumer_busy_nested);
    tcase_add_test(tc, test_consumer_owner_gone_or_garbage);
    tcase_add_test(tc, test_consumer_takeover_race);
    tcase_add_test(tc, test_capacity_100_byte_messages);
    tcase_add_test(tc, test_uncommitted_claim_invisible);
    tcase_add_test(tc, test_consumer_passes_open_claim);
    tcase_add_test(tc, test_order_after_passed_claim);
    tcase_add_test(tc, test_passed_claim_before_head_record);
    tcase_add_test(tc, test_catch_up_sees_commit);
    tcase_add_test(tc, test_read_wait_spins_before_sleeping);
    tcase_add_test(tc, test_claim_in_refused_chunk);
    tcase_add_test(tc, test_claim_then_install);
    tcase_add_test(tc, test_refused_chunk_passed_while_pinned);
    tcase_add_test(tc, test_spill_over_aliased_chunks);
    tcase_add_test(tc, test_wake_before_last_look);
    tcase_add_test(tc, test_close_after_refused_claim);
    tcase_add_test(tc, test_records_longer_than_chunks_at_once);
    tcase_add_test(tc, test_close);
    tcase_add_test(tc, test_close_with_open_claim);
    tcase_add_test(tc, test_read_wait_timeout);
    tcase_add_test(tc, test_read_wait_woken_and_closed);
    tcase_add_test(tc, test_threads_exact);
    tcase_add_test(tc, test_producer_slots);
    tcase_add_test(tc, test_open_checks);
    tcase_add_test(tc, test_corrupt_record_skipped);
    tcase_add_test(tc, test_corrupt_region_fuzz);
    tcase_add_test(tc, test_corrupt_limit_far_ahead);
    suite_add_tcase(s, tc);
    TCase *tp = tcase_create("processes");
    tcase_set_timeout(tp, 600);
    tcase_add_test(tp, test_processes_exact);
    tcase_add_test(tp, test_named_create_race_and_mode);
    tcase_add_test(tp, test_sigstop_between_reserve_and_commit);
    tcase_add_test(tp, test_sigkill_between_reserve_and_commit);
    tcase_add_test(tp, test_sleeping_consumer_across_processes);
    tcase_add_test(tp, test_consumer_killed_inside_read_wait);
    tcase_add_test(tp, test_consumer_exec_from_thread);
    tcase_add_test(tp, test_owner_alive_after_main_thread_exit);
    suite_add_tcase(s, tp);
    TCase *tf = tcase_create("fast paths");
    tcase_set_timeout(tf, 600);
    tcase_add_test(tf, test_fast_paths_same_region);
    suite_add_tcase(s, tf);
#ifdef MPSCQ_HAVE_ASM
    /* Everything that uses no hook (the hooks are in the C twins), again
     * through the NASM fast paths. */
    TCase *ta = tcase_create("asm");
    tcase_set_timeout(ta, 600);
    tcase_add_checked_fixture(ta, tu_use_asm, tu_use_c);   /* the NASM fast paths */
    tcase_add_test(ta, test_roundtrip_every_size);
    tcase_add_test(ta, test_max_message_exact);
    tcase_add_test(ta, test_small_buffer_keeps_message);
    tcase_add_test(ta, test_peek_contract);
    tcase_add_test(ta, test_peek_holds_its_chunk);
    tcase_add_test(ta, test_capacity_100_byte_messages);
    tcase_add_test(ta, test_uncommitted_claim_invisible);
    tcase_add_test(ta, test_consumer_passes_open_claim);
    tcase_add_test(ta, test_order_after_passed_claim);
    tcase_add_test(ta, test_passed_claim_before_head_record);
    tcase_add_test(ta, test_catch_up_sees_commit);
    tcase_add_test(ta, test_spill_over_aliased_chunks);
    tcase_add_test(ta, test_close);
    tcase_add_test(ta, test_close_with_open_claim);
    tcase_add_test(ta, test_read_wait_woken_and_closed);
    tcase_add_test(ta, test_threads_exact);
    tcase_add_test(ta, test_corrupt_region_fuzz);
    tcase_add_test(ta, test_processes_exact);
    tcase_add_test(ta, test_sigstop_between_reserve_and_commit);
    tcase_add_test(ta, test_sigkill_between_reserve_and_commit);
    tcase_add_test(ta, test_sleeping_consumer_across_processes);
    suite_add_tcase(s, ta);
#endif
    return s;
}

int main(void)
{
    const char *fd = getenv(EXEC_ENV);
    if (fd)
        return exec_image(fd);       /* test_consumer_exec_from_thread's new image */
    return tu_run("ring", ring_suite());
}
