/* check_wait.c - the sleeping consumer: wake-up, timeout, close. */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

#include "testutil.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Wait (without sleeping a fixed time) until the consumer is in the kernel. */
static void wait_until_parked(mpscq_t *q, unsigned long long parks)
{
    struct mpscq_stats st;
    do {
        sched_yield();
        mpscq_stats(q, &st);
    } while (st.consumer_parks < parks);
}

struct waiter {
    mpscq_t *q;
    long long timeout;
    int rc;
    void *msg;
};

static void *wait_thread(void *p)
{
    struct waiter *w = p;
    w->rc = mpscq_dequeue_wait(w->q, &w->msg, w->timeout);
    return NULL;
}

/* A consumer thread sleeping in mpscq_dequeue_wait(-1) on a new queue. */
static mpscq_t *start_parked_waiter(struct waiter *w, pthread_t *th)
{
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, NULL), MPSCQ_OK);
    *w = (struct waiter){ q, -1, -1, NULL };
    ck_assert_int_eq(pthread_create(th, NULL, wait_thread, w), 0);
    wait_until_parked(q, 1);
    return q;
}

START_TEST(test_wakeup)
{
    struct waiter w;
    pthread_t th;
    mpscq_t *q = start_parked_waiter(&w, &th);
    ck_assert_int_eq(mpscq_enqueue(q, (void *)42), MPSCQ_OK);
    pthread_join(th, NULL);
    ck_assert_int_eq(w.rc, MPSCQ_OK);
    ck_assert_ptr_eq(w.msg, (void *)42);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* The first sleep of a wait is light (no membarrier, at most 1 ms); the
 * second, after a light one found nothing, is exact and unbounded.  Wake
 * the consumer in that second sleep: with an infinite timeout a lost
 * wake-up there would hang (Check's test timeout fails it). */
START_TEST(test_wakeup_from_exact_sleep)
{
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, NULL), MPSCQ_OK);
    struct waiter w = { q, -1, -1, NULL };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, wait_thread, &w), 0);
    wait_until_parked(q, 2); /* the light sleep timed out, the exact one began */
    ck_assert_int_eq(mpscq_enqueue(q, (void *)7), MPSCQ_OK);
    pthread_join(th, NULL);
    ck_assert_int_eq(w.rc, MPSCQ_OK);
    ck_assert_ptr_eq(w.msg, (void *)7);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

START_TEST(test_timeout)
{
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, NULL), MPSCQ_OK);
    void *m = (void *)5;
    ck_assert_int_eq(mpscq_dequeue_wait(q, &m, 0), MPSCQ_TIMEOUT);
    uint64_t t0 = now_ns();
    ck_assert_int_eq(mpscq_dequeue_wait(q, &m, 20000000), MPSCQ_TIMEOUT);
    /* Never early (a lower bound, not a speed threshold). */
    ck_assert_uint_ge(now_ns() - t0, 20000000);
    ck_assert_ptr_eq(m, (void *)5);
    /* A message already there is returned even with timeout 0. */
    ck_assert_int_eq(mpscq_enqueue(q, NULL), MPSCQ_OK);
    ck_assert_int_eq(mpscq_dequeue_wait(q, &m, 0), MPSCQ_OK);
    ck_assert_ptr_null(m);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

START_TEST(test_close_wakes)
{
    struct waiter w;
    pthread_t th;
    mpscq_t *q = start_parked_waiter(&w, &th);
    mpscq_close(q);
    pthread_join(th, NULL);
    ck_assert_int_eq(w.rc, MPSCQ_CLOSED);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* No lost wake-up: a producer sends messages one at a time, each only
 * after the previous was received, so the consumer parks between most of
 * them.  A lost wake-up shows as MPSCQ_TIMEOUT (10 s per message). */
struct pingpong {
    mpscq_t *q;
    _Atomic uint64_t received;
    uint64_t n;
};

static void *pp_producer(void *p)
{
    struct pingpong *pp = p;
    for (uint64_t i = 0; i < pp->n; i++) {
        while (atomic_load(&pp->received) < i)
            sched_yield();
        ck_assert_int_eq(mpscq_enqueue(pp->q, (void *)(uintptr_t)i), MPSCQ_OK);
    }
    return NULL;
}

START_TEST(test_no_lost_wakeup)
{
    struct pingpong pp;
    ck_assert_int_eq(mpscq_create(&pp.q, NULL), MPSCQ_OK);
    atomic_init(&pp.received, 0);
    pp.n = tu_scaled(3000, 100);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, pp_producer, &pp), 0);
    for (uint64_t i = 0; i < pp.n; i++) {
        void *m;
        ck_assert_int_eq(mpscq_dequeue_wait(pp.q, &m, 10000000000LL), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)(uintptr_t)i);
        atomic_store(&pp.received, i + 1);
    }
    pthread_join(th, NULL);
    mpscq_destroy(pp.q, NULL, NULL);
}
END_TEST

/* Many producers and a waiting consumer: everything arrives. */
struct wprod {
    mpscq_t *q;
    unsigned id;
    uint64_t n;
};

static void *w_producer(void *p)
{
    struct wprod *a = p;
    for (uint64_t i = 0; i < a->n; i++) {
        ck_assert_int_eq(mpscq_enqueue(a->q, tu_msg(a->id, i)), MPSCQ_OK);
        if (i % 64 == 0)
            sched_yield();
    }
    return NULL;
}

START_TEST(test_wait_many_producers)
{
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, NULL), MPSCQ_OK);
    const unsigned P = 8;
    uint64_t n = tu_scaled(20000, 200);
    pthread_t th[8];
    struct wprod a[8];
    for (unsigned p = 0; p < P; p++) {
        a[p] = (struct wprod){ q, p, n };
        ck_assert_int_eq(pthread_create(&th[p], NULL, w_producer, &a[p]), 0);
    }
    uint64_t next[8] = { 0 };
    for (uint64_t got = 0; got < P * n; got++) {
        void *m;
        ck_assert_int_eq(mpscq_dequeue_wait(q, &m, 10000000000LL), MPSCQ_OK);
        ck_assert_uint_eq(tu_seq(m), next[tu_producer(m)]);
        next[tu_producer(m)]++;
    }
    for (unsigned p = 0; p < P; p++)
        pthread_join(th[p], NULL);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("wait");
    TCase *tc = tcase_create("wait");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_wakeup);
    tcase_add_test(tc, test_wakeup_from_exact_sleep);
    tcase_add_test(tc, test_timeout);
    tcase_add_test(tc, test_close_wakes);
    tcase_add_test(tc, test_no_lost_wakeup);
    tcase_add_test(tc, test_wait_many_producers);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run("wait", suite());
}
