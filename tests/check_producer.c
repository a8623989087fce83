/* check_producer.c - producer handles (mpscq_producer_*): the contract of
 * mpscq_enqueue through a handle, handles moving between threads, record
 * reuse, misuse and allocation failure.  Linked with the test library to
 * count read-modify-writes and to see the record list. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <stdlib.h>

#include "testutil.h"
#include "internal.h"
#include "hazard.h"

static size_t records(mpscq_t *q)
{
    size_t n = 0;
    for (struct mpscq_hp_rec *r = atomic_load(&((struct mpscq *)q)->records); r;
         r = atomic_load(&r->next))
        n++;
    return n;
}

START_TEST(test_producer_fifo_with_plain_enqueue)
{
    /* One thread mixes its handle and plain calls: program order is kept,
     * and everything comes back to the allocator. */
    struct tu_alloc a;
    tu_alloc_init(&a);
    mpscq_config c;
    mpscq_config_init(&c);
    c.segment_slots = 4;
    tu_config_alloc(&c, &a);
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    mpscq_producer_t *p;
    ck_assert_int_eq(mpscq_producer_create(q, &p), MPSCQ_OK);
    void *b3[3];
    uint64_t seq = 0;
    for (int i = 0; i < 300; i++) {
        if (i % 3 == 0) {
            ck_assert_int_eq(mpscq_producer_enqueue(p, tu_msg(0, seq++)), MPSCQ_OK);
        } else if (i % 3 == 1) {
            ck_assert_int_eq(mpscq_enqueue(q, tu_msg(0, seq++)), MPSCQ_OK);
        } else {
            for (int k = 0; k < 3; k++)
                b3[k] = tu_msg(0, seq++);
            ck_assert_int_eq(mpscq_producer_enqueue_batch(p, b3, 3), MPSCQ_OK);
        }
    }
    ck_assert_int_eq(mpscq_producer_enqueue_batch(p, NULL, 0), MPSCQ_OK);
    uint64_t expected[1] = { seq };
    tu_drain_verify(q, 1, expected);
    mpscq_producer_destroy(p);
    mpscq_destroy(q, NULL, NULL);
    ck_assert_int_eq(atomic_load(&a.outstanding), 0);
}
END_TEST

struct hp_arg {
    mpscq_t *q;
    unsigned id;
    uint64_t n;
    mpscq_producer_t *p;
};

static void *handle_producer(void *v)
{
    struct hp_arg *a = v;
    for (uint64_t i = 0; i < a->n; i++)
        ck_assert_int_eq(mpscq_producer_enqueue(a->p, tu_msg(a->id, i)), MPSCQ_OK);
    return NULL;
}

START_TEST(test_producer_eight_handles)
{
    /* Eight threads, a handle each, 2-slot segments (every other enqueue
     * links one): per-producer FIFO, no loss, no duplicate. */
    mpscq_config c;
    mpscq_config_init(&c);
    c.segment_slots = 2;
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    const unsigned P = 8;
    uint64_t n = tu_scaled(50000, 500);
    struct hp_arg a[8];
    pthread_t th[8];
    uint64_t expected[8];
    for (unsigned i = 0; i < P; i++) {
        a[i] = (struct hp_arg){ q, i, n, NULL };
        ck_assert_int_eq(mpscq_producer_create(q, &a[i].p), MPSCQ_OK);
        expected[i] = n;
        ck_assert_int_eq(pthread_create(&th[i], NULL, handle_producer, &a[i]), 0);
    }
    tu_drain_verify(q, P, expected);
    for (unsigned i = 0; i < P; i++) {
        pthread_join(th[i], NULL);
        mpscq_producer_destroy(a[i].p);
    }
    /* The main thread never enqueued: the eight handles' records only. */
    ck_assert_uint_eq(records(q), P);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

START_TEST(test_producer_moves_between_threads)
{
    /* A handle is used by one thread at a time, any thread: created here,
     * used by three threads one after the other (join orders them). */
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, NULL), MPSCQ_OK);
    mpscq_producer_t *p;
    ck_assert_int_eq(mpscq_producer_create(q, &p), MPSCQ_OK);
    uint64_t n = tu_scaled(3000, 100);
    for (unsigned t = 0; t < 3; t++) {
        struct hp_arg a = { q, t, n, p };
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, handle_producer, &a), 0);
        pthread_join(th, NULL);
    }
    uint64_t expected[3] = { n, n, n };
    tu_drain_verify(q, 3, expected);
    mpscq_producer_destroy(p);
    ck_assert_uint_eq(records(q), 1);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

START_TEST(test_producer_records_reused)
{
    /* Handles made and given back a hundred times, two at once, reuse the
     * same two records. */
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, NULL), MPSCQ_OK);
    void *m;
    for (int i = 0; i < 100; i++) {
        mpscq_producer_t *p1, *p2;
        ck_assert_int_eq(mpscq_producer_create(q, &p1), MPSCQ_OK);
        ck_assert_int_eq(mpscq_producer_create(q, &p2), MPSCQ_OK);
        ck_assert_ptr_ne(p1, p2);
        ck_assert_int_eq(mpscq_producer_enqueue(p1, tu_msg(1, (uint64_t)i)), MPSCQ_OK);
        ck_assert_int_eq(mpscq_producer_enqueue(p2, tu_msg(2, (uint64_t)i)), MPSCQ_OK);
        mpscq_producer_destroy(p2);
        mpscq_producer_destroy(p1);
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, tu_msg(1, (uint64_t)i));
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, tu_msg(2, (uint64_t)i));
    }
    ck_assert_uint_eq(records(q), 2);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

START_TEST(test_producer_misuse_and_status)
{
    mpscq_t *q;
    mpscq_config c;
    mpscq_config_init(&c);
    c.capacity = 4;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    mpscq_producer_t *p = (mpscq_producer_t *)0x1;
    ck_assert_int_eq(mpscq_producer_create(NULL, &p), MPSCQ_INVAL);
    ck_assert_ptr_eq(p, (mpscq_producer_t *)0x1);
    ck_assert_int_eq(mpscq_producer_create(q, NULL), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_producer_enqueue(NULL, NULL), MPSCQ_INVAL);
    void *b[8] = { 0 };
    ck_assert_int_eq(mpscq_producer_enqueue_batch(NULL, b, 1), MPSCQ_INVAL);
    mpscq_producer_destroy(NULL);
    ck_assert_int_eq(mpscq_producer_create(q, &p), MPSCQ_OK);
    ck_assert_int_eq(mpscq_producer_enqueue_batch(p, NULL, 2), MPSCQ_INVAL);
    /* The statuses of mpscq_enqueue and mpscq_enqueue_batch. */
    ck_assert_int_eq(mpscq_producer_enqueue_batch(p, b, 5), MPSCQ_INVAL); /* n > capacity */
    ck_assert_int_eq(mpscq_producer_enqueue_batch(p, b, 3), MPSCQ_OK);
    ck_assert_int_eq(mpscq_producer_enqueue_batch(p, b, 2), MPSCQ_FULL);
    ck_assert_int_eq(mpscq_producer_enqueue(p, NULL), MPSCQ_OK);
    ck_assert_int_eq(mpscq_producer_enqueue(p, NULL), MPSCQ_FULL);
    ck_assert_uint_eq(mpscq_size(q), 4);
    mpscq_close(q);
    void *m;
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_int_eq(mpscq_producer_enqueue(p, NULL), MPSCQ_CLOSED);
    ck_assert_int_eq(mpscq_producer_enqueue_batch(p, b, 2), MPSCQ_CLOSED);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_CLOSED);
    mpscq_producer_destroy(p);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

START_TEST(test_producer_create_nomem)
{
    /* Fail the handle's allocation, then its record's: NOMEM, *p
     * untouched, nothing kept; then it works. */
    struct tu_alloc a;
    tu_alloc_init(&a);
    mpscq_config c;
    mpscq_config_init(&c);
    tu_config_alloc(&c, &a);
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    long long base = atomic_load(&a.outstanding);
    mpscq_producer_t *p = (mpscq_producer_t *)0x1;
    for (long k = 1; k <= 2; k++) {
        atomic_store(&a.fail_at, atomic_load(&a.calls) + k);
        ck_assert_int_eq(mpscq_producer_create(q, &p), MPSCQ_NOMEM);
        ck_assert_ptr_eq(p, (mpscq_producer_t *)0x1);
        ck_assert_int_eq(atomic_load(&a.outstanding), base);
    }
    atomic_store(&a.fail_at, 0);
    ck_assert_int_eq(mpscq_producer_create(q, &p), MPSCQ_OK);
    /* Its first enqueue needs a spare segment: that failing is NOMEM. */
    atomic_store(&a.fail_at, atomic_load(&a.calls) + 1);
    ck_assert_int_eq(mpscq_producer_enqueue(p, NULL), MPSCQ_NOMEM);
    ck_assert_uint_eq(mpscq_size(q), 0);
    atomic_store(&a.fail_at, 0);
    ck_assert_int_eq(mpscq_producer_enqueue(p, NULL), MPSCQ_OK);
    mpscq_producer_destroy(p);
    mpscq_destroy(q, NULL, NULL);
    ck_assert_int_eq(atomic_load(&a.outstanding), 0);
}
END_TEST

START_TEST(test_producer_common_case_rmws)
{
    /* Through a handle the common case is the ticket alone, as for
     * mpscq_enqueue, and no thread slot is claimed. */
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, NULL), MPSCQ_OK);
    mpscq_producer_t *p;
    ck_assert_int_eq(mpscq_producer_create(q, &p), MPSCQ_OK);
    ck_assert_int_eq(mpscq_producer_enqueue(p, NULL), MPSCQ_OK); /* takes its spare */
    unsigned long hist[8] = { 0 };
    for (int i = 0; i < 500; i++) {
        unsigned long before = mpscq_rmw_count;
        ck_assert_int_eq(mpscq_producer_enqueue(p, NULL), MPSCQ_OK);
        unsigned long used = mpscq_rmw_count - before;
        hist[used < 7 ? used : 7]++;
    }
    ck_assert_uint_gt(hist[1], 400);
    ck_assert_uint_eq(hist[0], 0);
    ck_assert_ptr_ne(mpscq_tls.q, q); /* this thread never needed its own record */
    void *m;
    while (mpscq_dequeue(q, &m) == MPSCQ_OK)
        ;
    mpscq_producer_destroy(p);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* Async-signal safety (design.md s. 13): a signal handler enqueues through
 * its own handle into a preallocated queue while the interrupted thread
 * is inside an enqueue of its own, between its ticket and its slot write
 * (the hook raises the signal exactly there).  Both messages arrive, each
 * producer's in order, errno is as the handler found it, and nothing is
 * allocated. */
static mpscq_producer_t *sig_handle;
static _Atomic unsigned long sig_seq, sig_errno_bad;
static volatile sig_atomic_t sig_armed;

static void sig_handler(int sig)
{
    (void)sig;
    errno = 4242;
    unsigned long i = atomic_load(&sig_seq);
    int rc = mpscq_producer_enqueue(sig_handle, tu_msg(1, i));
    if (rc == MPSCQ_OK)
        atomic_store(&sig_seq, i + 1);
    if (errno != 4242)
        atomic_fetch_add(&sig_errno_bad, 1);
}

static void sig_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q; (void)t;
    if (where == MPSCQ_HOOK_AFTER_TICKET && sig_armed) {
        sig_armed = 0;
        raise(SIGUSR1);
    }
}

START_TEST(test_signal_handler_enqueue)
{
    struct tu_alloc a;
    tu_alloc_init(&a);
    mpscq_config c;
    mpscq_config_init(&c);
    c.capacity = 64;
    c.segment_slots = 8;
    c.preallocate = 1;
    tu_config_alloc(&c, &a);
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    mpscq_producer_t *mine;
    ck_assert_int_eq(mpscq_producer_create(q, &mine), MPSCQ_OK);
    ck_assert_int_eq(mpscq_producer_create(q, &sig_handle), MPSCQ_OK);
    long calls = atomic_load(&a.calls);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = sig_handler;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    atomic_store(&sig_seq, 0);
    atomic_store(&sig_errno_bad, 0);
    mpscq_test_hook = sig_hook;
    uint64_t next[2] = { 0, 0 }, mine_seq = 0;
    for (int round = 0; round < 200; round++) {
        for (int k = 0; k < 32; k++) {
            sig_armed = 1;
            ck_assert_int_eq(mpscq_producer_enqueue(mine, tu_msg(0, mine_seq)), MPSCQ_OK);
            mine_seq++;
            ck_assert_int_eq(sig_armed, 0); /* the handler ran inside that enqueue */
        }
        void *m;
        while (mpscq_dequeue(q, &m) == MPSCQ_OK) {
            unsigned p = tu_producer(m);
            ck_assert_uint_lt(p, 2);
            ck_assert_uint_eq(tu_seq(m), next[p]);
            next[p]++;
        }
    }
    mpscq_test_hook = NULL;
    signal(SIGUSR1, SIG_DFL);
    ck_assert_uint_eq(next[0], mine_seq);
    ck_assert_uint_eq(next[1], atomic_load(&sig_seq));
    ck_assert_uint_eq(next[1], 200 * 32); /* never full: drained each round */
    ck_assert_uint_eq(atomic_load(&sig_errno_bad), 0);
    ck_assert_int_eq(atomic_load(&a.calls), calls);
    mpscq_producer_destroy(sig_handle);
    mpscq_producer_destroy(mine);
    mpscq_destroy(q, NULL, NULL);
    ck_assert_int_eq(atomic_load(&a.outstanding), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("producer");
    TCase *tc = tcase_create("producer");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_producer_fifo_with_plain_enqueue);
    tcase_add_test(tc, test_producer_eight_handles);
    tcase_add_test(tc, test_producer_moves_between_threads);
    tcase_add_test(tc, test_producer_records_reused);
    tcase_add_test(tc, test_producer_misuse_and_status);
    tcase_add_test(tc, test_producer_create_nomem);
    tcase_add_test(tc, test_producer_common_case_rmws);
    tcase_add_test(tc, test_signal_handler_enqueue);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run("producer", suite());
}
