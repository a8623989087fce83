/* check_api.c - single-threaded semantics of the public API. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static mpscq_t *make(size_t cap, size_t slots)
{
    mpscq_config c;
    mpscq_config_init(&c);
    c.capacity = cap;
    c.segment_slots = slots;
    mpscq_t *q = NULL;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    ck_assert_ptr_nonnull(q);
    return q;
}

START_TEST(test_fifo_single_thread)
{
    /* Small segments so that the run crosses many segment boundaries. */
    mpscq_t *q = make(0, (size_t)1 << _i); /* 2 .. 2048 slots */
    const uintptr_t n = 5000;
    for (uintptr_t i = 0; i < n; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)(i + 1)), MPSCQ_OK);
    ck_assert_uint_eq(mpscq_size(q), n);
    for (uintptr_t i = 0; i < n; i++) {
        void *m;
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)(i + 1));
    }
    void *m = (void *)0x1234;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    ck_assert_ptr_eq(m, (void *)0x1234); /* untouched on EMPTY */
    ck_assert_uint_eq(mpscq_size(q), 0);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

START_TEST(test_interleaved)
{
    mpscq_t *q = make(0, 4);
    uintptr_t in = 0, out = 0;
    for (int round = 0; round < 300; round++) {
        for (int k = 0; k < round % 7 + 1; k++)
            ck_assert_int_eq(mpscq_enqueue(q, (void *)in++), MPSCQ_OK);
        for (int k = 0; k < round % 5 + 1; k++) {
            void *m;
            int rc = mpscq_dequeue(q, &m);
            if (out == in) {
                ck_assert_int_eq(rc, MPSCQ_EMPTY);
                break;
            }
            ck_assert_int_eq(rc, MPSCQ_OK);
            ck_assert_ptr_eq(m, (void *)out++);
        }
        ck_assert_uint_eq(mpscq_size(q), in - out);
    }
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

START_TEST(test_null_messages)
{
    mpscq_t *q = make(0, 0);
    ck_assert_int_eq(mpscq_enqueue(q, NULL), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(q, (void *)1), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(q, NULL), MPSCQ_OK);
    void *m = (void *)0xdead;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_null(m);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)1);
    m = (void *)0xdead;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_null(m);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

START_TEST(test_status_codes)
{
    int codes[] = { MPSCQ_OK, MPSCQ_EMPTY, MPSCQ_FULL, MPSCQ_CLOSED,
                    MPSCQ_TIMEOUT, MPSCQ_NOMEM, MPSCQ_INVAL, MPSCQ_BUSY, MPSCQ_EXIST };
    size_t n = sizeof codes / sizeof codes[0];
    ck_assert_int_eq(MPSCQ_OK, 0);
    for (size_t i = 0; i < n; i++) {
        const char *s = mpscq_strerror(codes[i]);
        ck_assert_ptr_nonnull(s);
        ck_assert_str_ne(s, mpscq_strerror(-12345));
        for (size_t j = i + 1; j < n; j++) {
            ck_assert_int_ne(codes[i], codes[j]);
            ck_assert_str_ne(s, mpscq_strerror(codes[j]));
        }
    }
    ck_assert_str_eq(mpscq_strerror(999), "unknown status");
    /* Each code is produced by the call documented to produce it. */
    mpscq_t *q = make(1, 0);
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    ck_assert_int_eq(mpscq_enqueue(q, &m), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(q, &m), MPSCQ_FULL);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_int_eq(mpscq_dequeue_wait(q, &m, 1000), MPSCQ_TIMEOUT);
    ck_assert_int_eq(mpscq_dequeue(NULL, &m), MPSCQ_INVAL);
    mpscq_close(q);
    ck_assert_int_eq(mpscq_enqueue(q, &m), MPSCQ_CLOSED);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_CLOSED);
    mpscq_destroy(q, NULL, NULL);
    /* MPSCQ_NOMEM is exercised in check_memory. */
}
END_TEST

static void *bad_alloc(size_t s, void *a) { (void)s; (void)a; return NULL; }

START_TEST(test_bad_inputs)
{
    mpscq_config c;
    mpscq_t *q = (mpscq_t *)0x1;
    void *m;
    ck_assert_int_eq(mpscq_create(NULL, NULL), MPSCQ_INVAL);
    size_t bad_slots[] = { 3, 1, 6, 1000, MPSCQ_SEGMENT_SLOTS_MAX * 2, (size_t)-1 };
    for (size_t i = 0; i < sizeof bad_slots / sizeof bad_slots[0]; i++) {
        mpscq_config_init(&c);
        c.segment_slots = bad_slots[i];
        ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_INVAL);
        ck_assert_ptr_eq(q, (mpscq_t *)0x1); /* untouched */
    }
    mpscq_config_init(&c);
    c.capacity = MPSCQ_CAPACITY_MAX + 1;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_INVAL);
    mpscq_config_init(&c);
    c.alloc_fn = bad_alloc; /* without free_fn */
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_INVAL);
    ck_assert_ptr_eq(q, (mpscq_t *)0x1);
    /* Limits themselves are accepted. */
    mpscq_config_init(&c);
    c.segment_slots = MPSCQ_SEGMENT_SLOTS_MIN;
    c.capacity = MPSCQ_CAPACITY_MAX;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    ck_assert_uint_eq(mpscq_capacity(q), MPSCQ_CAPACITY_MAX);

    ck_assert_int_eq(mpscq_enqueue(NULL, NULL), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_enqueue_batch(NULL, &m, 1), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_enqueue_batch(q, NULL, 1), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_enqueue_batch(q, NULL, 0), MPSCQ_OK);
    ck_assert_int_eq(mpscq_dequeue(q, NULL), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_dequeue_wait(q, NULL, 0), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_dequeue_wait(NULL, &m, 0), MPSCQ_INVAL);
    ck_assert_uint_eq(mpscq_dequeue_batch(NULL, &m, 1), 0);
    ck_assert_uint_eq(mpscq_dequeue_batch(q, NULL, 1), 0);
    ck_assert_uint_eq(mpscq_size(NULL), 0);
    ck_assert_uint_eq(mpscq_capacity(NULL), 0);
    ck_assert_int_eq(mpscq_is_closed(NULL), 0);
    mpscq_close(NULL);
    mpscq_destroy(NULL, NULL, NULL);
    mpscq_config_init(NULL);
    struct mpscq_stats st;
    memset(&st, 0xff, sizeof st);
    mpscq_stats(NULL, &st);
    ck_assert_uint_eq(st.enqueued, 0);
    mpscq_stats(q, NULL);
    /* Nothing was enqueued by any of the rejected calls. */
    ck_assert_uint_eq(mpscq_size(q), 0);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

START_TEST(test_config_defaults)
{
    mpscq_config c;
    memset(&c, 0xab, sizeof c);
    mpscq_config_init(&c);
    ck_assert_uint_eq(c.capacity, 0);
    ck_assert_uint_eq(c.segment_slots, 0);
    ck_assert_ptr_null(c.log_fn);
    ck_assert_ptr_null(c.alloc_fn);
    ck_assert_ptr_null(c.free_fn);
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, NULL), MPSCQ_OK);
    ck_assert_uint_eq(mpscq_capacity(q), 0);
    ck_assert_int_eq(mpscq_is_closed(q), 0);
    mpscq_destroy(q, NULL, NULL);
    const char *impl = mpscq_implementation();
    ck_assert(strcmp(impl, "c11") == 0 || strcmp(impl, "x86_64-nasm") == 0);
}
END_TEST

START_TEST(test_capacity_one)
{
    mpscq_t *q = make(1, 2);
    void *m;
    for (uintptr_t i = 0; i < 100; i++) {
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
        ck_assert_uint_eq(mpscq_size(q), 1);
        ck_assert_int_eq(mpscq_enqueue(q, (void *)0xbad), MPSCQ_FULL);
        void *b[2] = { NULL, NULL };
        ck_assert_int_eq(mpscq_enqueue_batch(q, b, 1), MPSCQ_FULL);
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)i);
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    }
    struct mpscq_stats st;
    mpscq_stats(q, &st);
    ck_assert_uint_eq(st.full_rejections, 200);
    ck_assert_uint_eq(st.enqueued, 100);
    ck_assert_uint_eq(st.dequeued, 100);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

START_TEST(test_capacity_edges)
{
    const size_t cap = 37; /* places come back in batches of 37 / 8 = 4 */
    mpscq_t *q = make(cap, 8);
    void *m;
    for (uintptr_t i = 0; i < cap; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(q, (void *)99), MPSCQ_FULL);
    ck_assert_uint_eq(mpscq_size(q), cap);
    /* One out: its place is not back yet (FULL with up to 3 free) ... */
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)0);
    ck_assert_int_eq(mpscq_enqueue(q, (void *)99), MPSCQ_FULL);
    /* ... until the fourth: then exactly four places, and a batch needs
     * all its places: 5 refused whole, 4 accepted. */
    for (uintptr_t i = 1; i < 4; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)i);
    }
    void *b[5] = { (void *)100, (void *)101, (void *)102, (void *)103, (void *)104 };
    ck_assert_int_eq(mpscq_enqueue_batch(q, b, 5), MPSCQ_FULL);
    ck_assert_uint_eq(mpscq_size(q), cap - 4);
    ck_assert_int_eq(mpscq_enqueue_batch(q, b, 4), MPSCQ_OK);
    ck_assert_uint_eq(mpscq_size(q), cap);
    ck_assert_int_eq(mpscq_enqueue(q, (void *)99), MPSCQ_FULL);
    /* Larger than the capacity: never admissible, so a bad argument (a
     * retry-on-FULL loop would spin forever), and nothing counted. */
    void *big[40] = { 0 };
    struct mpscq_stats st0, st1;
    mpscq_stats(q, &st0);
    ck_assert_int_eq(mpscq_enqueue_batch(q, big, 40), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_enqueue_batch(q, big, cap + 1), MPSCQ_INVAL);
    mpscq_stats(q, &st1);
    ck_assert_uint_eq(st1.full_rejections, st0.full_rejections);
    ck_assert_uint_eq(mpscq_size(q), cap);
    /* Contents are intact and in order. */
    for (uintptr_t i = 4; i < cap; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)i);
    }
    for (uintptr_t i = 100; i < 104; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)i);
    }
    /* Drained: finding it empty gives every place back, so it takes
     * exactly `cap` messages again. */
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    for (uintptr_t i = 0; i < cap; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(q, (void *)99), MPSCQ_FULL);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

START_TEST(test_batch)
{
    /* Batches of every length 1..40 across 8-slot segments. */
    mpscq_t *q = make(0, 8);
    void *buf[64];
    uintptr_t v = 0;
    for (size_t n = 1; n <= 40; n++) {
        for (size_t k = 0; k < n; k++)
            buf[k] = (void *)(v + k);
        ck_assert_int_eq(mpscq_enqueue_batch(q, buf, n), MPSCQ_OK);
        v += n;
    }
    ck_assert_uint_eq(mpscq_size(q), v);
    uintptr_t want = 0;
    for (;;) {
        size_t got = mpscq_dequeue_batch(q, buf, 13);
        if (got == 0)
            break;
        for (size_t k = 0; k < got; k++)
            ck_assert_ptr_eq(buf[k], (void *)want++);
    }
    ck_assert_uint_eq(want, v);
    ck_assert_uint_eq(mpscq_dequeue_batch(q, buf, 0), 0);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

START_TEST(test_close_drain)
{
    mpscq_t *q = make(0, 4);
    void *m;
    for (uintptr_t i = 0; i < 10; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
    mpscq_close(q);
    mpscq_close(q); /* idempotent */
    ck_assert_int_eq(mpscq_is_closed(q), 1);
    ck_assert_int_eq(mpscq_enqueue(q, (void *)77), MPSCQ_CLOSED);
    void *b[2] = { 0 };
    ck_assert_int_eq(mpscq_enqueue_batch(q, b, 2), MPSCQ_CLOSED);
    ck_assert_uint_eq(mpscq_size(q), 10);
    for (uintptr_t i = 0; i < 10; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)i);
    }
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_CLOSED);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_CLOSED);
    /* dequeue_wait returns at once, even with an infinite timeout. */
    ck_assert_int_eq(mpscq_dequeue_wait(q, &m, -1), MPSCQ_CLOSED);
    ck_assert_uint_eq(mpscq_size(q), 0);
    struct mpscq_stats st;
    mpscq_stats(q, &st);
    ck_assert_uint_eq(st.closed_rejections, 2);
    ck_assert_uint_eq(st.enqueued, 10);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

START_TEST(test_close_bounded)
{
    /* A closed bounded queue returns the places taken by rejected calls. */
    mpscq_t *q = make(2, 2);
    void *m;
    ck_assert_int_eq(mpscq_enqueue(q, (void *)1), MPSCQ_OK);
    mpscq_close(q);
    ck_assert_int_eq(mpscq_enqueue(q, (void *)2), MPSCQ_CLOSED);
    ck_assert_int_eq(mpscq_enqueue(q, (void *)3), MPSCQ_CLOSED);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_CLOSED);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

struct drop_log {
    uintptr_t seen[64];
    size_t n;
};

static void drop_fn(void *msg, void *arg)
{
    struct drop_log *d = arg;
    d->seen[d->n++] = (uintptr_t)msg;
}

START_TEST(test_destroy_drop)
{
    mpscq_t *q = make(0, 4);
    struct drop_log d = { .n = 0 };
    void *b[5] = { (void *)10, (void *)11, (void *)12, (void *)13, (void *)14 };
    for (uintptr_t i = 0; i < 9; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue_batch(q, b, 5), MPSCQ_OK);
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK); /* 0 taken */
    mpscq_destroy(q, drop_fn, &d);
    ck_assert_uint_eq(d.n, 13);
    for (size_t i = 0; i < 8; i++)
        ck_assert_uint_eq(d.seen[i], i + 1);
    for (size_t i = 0; i < 5; i++)
        ck_assert_uint_eq(d.seen[8 + i], 10 + i);
}
END_TEST

START_TEST(test_version)
{
    ck_assert_str_eq(mpscq_version(), MPSCQ_VERSION_STRING);
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", MPSCQ_VERSION_MAJOR, MPSCQ_VERSION_MINOR,
             MPSCQ_VERSION_PATCH);
    ck_assert_str_eq(MPSCQ_VERSION_STRING, want);
    ck_assert_int_eq(MPSCQ_VERSION_NUMBER,
                     MPSCQ_VERSION_MAJOR * 65536 + MPSCQ_VERSION_MINOR * 256 + MPSCQ_VERSION_PATCH);
}
END_TEST

/* A program built against a newer header passes larger structures: the
 * library reads and writes only what it knows, refuses fields it does not
 * know when they are set, and refuses sizes no version ever had. */
START_TEST(test_sized_structs)
{
    struct {
        mpscq_config c;
        unsigned char newer[24];
    } big;
    memset(&big, 0xab, sizeof big);
    mpscq_config_init_sized(&big.c, sizeof big);
    for (size_t i = 0; i < sizeof big.newer; i++)
        ck_assert_uint_eq(big.newer[i], 0);
    big.c.capacity = 5;
    mpscq_t *q = (mpscq_t *)0x1;
    ck_assert_int_eq(mpscq_create_sized(&q, &big.c, sizeof big), MPSCQ_OK);
    ck_assert_uint_eq(mpscq_capacity(q), 5);
    mpscq_destroy(q, NULL, NULL);
    /* An unknown field set: refused, *q untouched. */
    big.newer[7] = 1;
    q = (mpscq_t *)0x1;
    ck_assert_int_eq(mpscq_create_sized(&q, &big.c, sizeof big), MPSCQ_INVAL);
    ck_assert_ptr_eq(q, (mpscq_t *)0x1);
    /* Shorter than any mpscq_config there was. */
    mpscq_config c;
    mpscq_config_init(&c);
    ck_assert_int_eq(mpscq_create_sized(&q, &c, 8), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_create_sized(&q, &c, 0), MPSCQ_INVAL);
    ck_assert_ptr_eq(q, (mpscq_t *)0x1);
    /* NULL is the defaults whatever the size. */
    ck_assert_int_eq(mpscq_create_sized(&q, NULL, 0), MPSCQ_OK);
    ck_assert_uint_eq(mpscq_capacity(q), 0);
    ck_assert_int_eq(mpscq_enqueue(q, NULL), MPSCQ_OK);

    /* Statistics: a larger structure gets zeros past what the library
     * has; a smaller one is not written past its size. */
    struct {
        struct mpscq_stats st;
        unsigned char newer[16];
    } sbig;
    memset(&sbig, 0xcd, sizeof sbig);
    mpscq_stats_sized(q, &sbig.st, sizeof sbig);
    ck_assert_uint_eq(sbig.st.enqueued, 1);
    for (size_t i = 0; i < sizeof sbig.newer; i++)
        ck_assert_uint_eq(sbig.newer[i], 0);
    unsigned char small[2 * sizeof(unsigned long long) + 8];
    memset(small, 0xcd, sizeof small);
    mpscq_stats_sized(q, (struct mpscq_stats *)(void *)small, 2 * sizeof(unsigned long long));
    unsigned long long first;
    memcpy(&first, small, sizeof first);
    ck_assert_uint_eq(first, 1);
    for (size_t i = 2 * sizeof(unsigned long long); i < sizeof small; i++)
        ck_assert_uint_eq(small[i], 0xcd);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("single-thread");
    tcase_add_loop_test(tc, test_fifo_single_thread, 1, 12);
    tcase_add_test(tc, test_interleaved);
    tcase_add_test(tc, test_null_messages);
    tcase_add_test(tc, test_status_codes);
    tcase_add_test(tc, test_bad_inputs);
    tcase_add_test(tc, test_config_defaults);
    tcase_add_test(tc, test_capacity_one);
    tcase_add_test(tc, test_capacity_edges);
    tcase_add_test(tc, test_batch);
    tcase_add_test(tc, test_close_drain);
    tcase_add_test(tc, test_close_bounded);
    tcase_add_test(tc, test_destroy_drop);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_sized_structs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run("api", suite());
}
