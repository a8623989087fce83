/* check_backpressure.c - mpscq_enqueue_wait, mpscq_dequeue_batch_wait and
 * mpscq_peek: the waiting and looking calls (issue 11, point 4). */
#include <check.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>

#include "config.h"

#include "testutil.h"
#include "internal.h"
#include "arch.h"
#include "dispatch.h"

static mpscq_t *bounded(size_t cap, size_t slots)
{
    mpscq_config c;
    mpscq_config_init(&c);
    c.capacity = cap;
    c.segment_slots = slots;
    mpscq_t *q = NULL;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    return q;
}

/* ------------------------------------------------------------------ */
/* mpscq_enqueue_wait without another thread                            */

/* A fresh bounded queue takes exactly `capacity`; each dequeue frees one
 * place for a waiting producer at once, although the consumer publishes
 * places in batches of capacity / 8 (up to 64). */
START_TEST(test_exact_capacity)
{
    static const size_t caps[] = { 1, 10, 64, 1000 };
    size_t cap = caps[_i];
    mpscq_t *q = bounded(cap, 16);
    for (uintptr_t i = 0; i < cap; i++)
        ck_assert_int_eq(mpscq_enqueue_wait(q, (void *)i, 0), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue_wait(q, (void *)0xbad, 0), MPSCQ_TIMEOUT);
    ck_assert_uint_eq(mpscq_size(q), cap);
    void *m;
    for (uintptr_t i = 0; i < 3 * cap; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)i);
        /* Exactly the one place that freed. */
        ck_assert_int_eq(mpscq_enqueue_wait(q, (void *)(i + cap), 0), MPSCQ_OK);
        ck_assert_int_eq(mpscq_enqueue_wait(q, (void *)0xbad, 0), MPSCQ_TIMEOUT);
        ck_assert_uint_eq(mpscq_size(q), cap);
    }
    struct mpscq_stats st;
    mpscq_stats(q, &st);
    ck_assert_uint_eq(st.producer_waits, 0); /* timeout 0 never waits */
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

START_TEST(test_timeout_keeps_nothing)
{
    mpscq_t *q = bounded(4, 2);
    for (uintptr_t i = 0; i < 4; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue_wait(q, (void *)99, 1000000), MPSCQ_TIMEOUT);
    ck_assert_int_eq(mpscq_enqueue_wait(q, (void *)99, 1), MPSCQ_TIMEOUT);
    ck_assert_uint_eq(mpscq_size(q), 4);
    struct mpscq_stats st;
    mpscq_stats(q, &st);
    ck_assert_uint_eq(st.producer_waits, 2);
    ck_assert_uint_eq(st.enqueued, 4);
    void *m;
    for (uintptr_t i = 0; i < 4; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)i);
    }
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

START_TEST(test_enqueue_wait_statuses)
{
    ck_assert_int_eq(mpscq_enqueue_wait(NULL, NULL, -1), MPSCQ_INVAL);
    /* Unbounded: never full, never waits. */
    mpscq_t *q = bounded(0, 4);
    for (uintptr_t i = 0; i < 100; i++)
        ck_assert_int_eq(mpscq_enqueue_wait(q, (void *)i, 0), MPSCQ_OK);
    mpscq_close(q);
    ck_assert_int_eq(mpscq_enqueue_wait(q, NULL, -1), MPSCQ_CLOSED);
    ck_assert_int_eq(mpscq_enqueue_wait(q, NULL, 0), MPSCQ_CLOSED);
    mpscq_destroy(q, NULL, NULL);
    /* Closed and full: CLOSED, not TIMEOUT, and at once. */
    q = bounded(2, 2);
    ck_assert_int_eq(mpscq_enqueue(q, NULL), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(q, NULL), MPSCQ_OK);
    mpscq_close(q);
    ck_assert_int_eq(mpscq_enqueue_wait(q, NULL, -1), MPSCQ_CLOSED);
    ck_assert_int_eq(mpscq_enqueue_wait(q, NULL, LLONG_MAX), MPSCQ_CLOSED);
    ck_assert_uint_eq(mpscq_size(q), 2);
    mpscq_destroy(q, NULL, NULL);
    ck_assert_str_ne(mpscq_strerror(MPSCQ_TIMEOUT), mpscq_strerror(999));
}
END_TEST

/* ------------------------------------------------------------------ */
/* Blocked producers, woken by a dequeue or by close                    */

/* The hook counts producers that armed, retried, found the queue full
 * and are about to sleep; `hook_action` runs there (in that producer's
 * thread), once. */
static _Atomic int about_to_sleep, sleeps_timed_out;
static void (*_Atomic hook_action)(const struct mpscq *q);

static void space_hook(int where, const struct mpscq *q, uint64_t t)
{
    if (where == MPSCQ_HOOK_SPACE_SLEPT && t)
        atomic_fetch_add(&sleeps_timed_out, 1);
    if (where != MPSCQ_HOOK_SPACE_RETRIED)
        return;
    void (*act)(const struct mpscq *) = atomic_exchange(&hook_action, NULL);
    if (act)
        act(q);
    atomic_fetch_add(&about_to_sleep, 1);
}

struct waiter {
    mpscq_t *q;
    void *msg;
    long long timeout;
    _Atomic int rc;
};

static void *waiter_main(void *p)
{
    struct waiter *w = p;
    atomic_store(&w->rc, mpscq_enqueue_wait(w->q, w->msg, w->timeout));
    return NULL;
}

/* The consumer's dequeue lands exactly between a waiting producer's last
 * look and its futex wait: the consumer must see the producer armed and
 * wake it, or the producer sleeps with the place free.  (With the
 * consumer's check removed, the producer's light sleep times out and it
 * finds the place only in its exact round: this fails.) */
static mpscq_t *race_q;
static void dequeue_one(const struct mpscq *q)
{
    (void)q;
    void *m;
    ck_assert_int_eq(mpscq_dequeue(race_q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)0);
}

START_TEST(test_no_lost_wakeup)
{
    /* capacity 64: places are published 8 at a time, so the one dequeue
     * below is not published by the batch rule; only the wake-up gives it. */
    mpscq_t *q = bounded(64, 16);
    race_q = q;
    for (uintptr_t i = 0; i < 64; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
    atomic_store(&about_to_sleep, 0);
    atomic_store(&sleeps_timed_out, 0);
    atomic_store(&hook_action, dequeue_one);
    mpscq_test_hook = space_hook;
    /* 20 s: a failure detector only (the correct code returns at once). */
    struct waiter w = { q, (void *)64, 20000000000LL, -1 };
    waiter_main(&w);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(atomic_load(&w.rc), MPSCQ_OK);
    ck_assert_int_eq(atomic_load(&about_to_sleep), 1);
    ck_assert_int_eq(atomic_load(&sleeps_timed_out), 0); /* woken, not timed out */
    ck_assert_uint_eq(mpscq_size(q), 64);
    void *m;
    for (uintptr_t i = 1; i <= 64; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)i);
    }
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* A refusal makes room too: a producer P takes a ticket that will be
 * refused and stops before counting it; the consumer takes the only
 * message; a waiter W is refused because P's ticket is not counted yet,
 * and goes to sleep.  When P counts its refusal, W must be woken: no
 * dequeue may ever come (the queue is empty).  (Found by review: without
 * the refuser's wake-up, W's light sleep times out and an exact one can
 * sleep for good; this asserts W was woken, not timed out.) */
static _Atomic int refuser_stalled, refuser_release;
static _Thread_local int refuser_stop;
static void refusal_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    if (where == MPSCQ_HOOK_AFTER_TICKET && refuser_stop) {
        refuser_stop = 0;
        atomic_store(&refuser_stalled, 1);
        while (!atomic_load(&refuser_release))
            sched_yield();
    }
    if (where == MPSCQ_HOOK_SPACE_RETRIED && atomic_fetch_add(&about_to_sleep, 1) == 0) {
        /* W armed, looked, is about to sleep: let P count its refusal
         * and wait until it has. */
        atomic_store(&refuser_release, 1);
        while (atomic_load(&refuser_stalled) != 2)
            sched_yield();
    }
    if (where == MPSCQ_HOOK_SPACE_SLEPT && t)
        atomic_fetch_add(&sleeps_timed_out, 1);
}

struct refuser {
    mpscq_t *q;
    _Atomic int rc;
};

static void *refuser_main(void *p)
{
    struct refuser *r = p;
    /* The message that fills the queue, from this thread, so that the
     * next enqueue runs the fast path (record and spare in hand) and
     * stops right after its ticket, before the refusal is counted. */
    ck_assert_int_eq(mpscq_enqueue(r->q, (void *)0), MPSCQ_OK);
    refuser_stop = 1;
    atomic_store(&r->rc, mpscq_enqueue(r->q, (void *)1));
    atomic_store(&refuser_stalled, 2);
    return NULL;
}

START_TEST(test_refusal_wakes_waiter)
{
    mpscq_t *q = bounded(1, 4);
    atomic_store(&refuser_stalled, 0);
    atomic_store(&refuser_release, 0);
    atomic_store(&about_to_sleep, 0);
    atomic_store(&sleeps_timed_out, 0);
    mpscq_test_hook = refusal_hook;
    struct refuser r = { q, -1 };
    pthread_t tp;
    ck_assert_int_eq(pthread_create(&tp, NULL, refuser_main, &r), 0);
    while (atomic_load(&refuser_stalled) == 0)
        sched_yield();
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK); /* the queue is empty now */
    ck_assert_ptr_eq(m, (void *)0);
    /* 20 s: a failure detector only. */
    struct waiter w = { q, (void *)2, 20000000000LL, -1 };
    waiter_main(&w);
    pthread_join(tp, NULL);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(atomic_load(&r.rc), MPSCQ_FULL);
    ck_assert_int_eq(atomic_load(&w.rc), MPSCQ_OK);
    ck_assert_int_ge(atomic_load(&about_to_sleep), 1);
    ck_assert_int_eq(atomic_load(&sleeps_timed_out), 0); /* woken by the refuser */
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)2);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* A producer blocked for good (timeout LLONG_MAX: practically forever,
 * not an overflow into an immediate timeout) gets in when the consumer,
 * in another thread, takes one message. */
START_TEST(test_blocked_until_dequeue)
{
    const long long timeouts[] = { -1, LLONG_MAX };
    mpscq_t *q = bounded(16, 4);
    for (uintptr_t i = 0; i < 16; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
    atomic_store(&about_to_sleep, 0);
    atomic_store(&hook_action, NULL);
    mpscq_test_hook = space_hook;
    struct waiter w = { q, (void *)16, timeouts[_i], -1 };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, waiter_main, &w), 0);
    while (atomic_load(&about_to_sleep) == 0)
        sched_yield();
    /* It is asleep or about to be; still nothing of it is in. */
    ck_assert_int_eq(atomic_load(&w.rc), -1);
    ck_assert_uint_eq(mpscq_size(q), 16);
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)0);
    pthread_join(t, NULL);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(atomic_load(&w.rc), MPSCQ_OK);
    struct mpscq_stats st;
    mpscq_stats(q, &st);
    ck_assert_uint_eq(st.producer_waits, 1);
    for (uintptr_t i = 1; i <= 16; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)i);
    }
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* mpscq_close wakes every blocked producer: CLOSED, nothing kept, and the
 * messages already in are drained, then CLOSED. */
START_TEST(test_close_wakes_producers)
{
    enum { W = 4, CAP = 8 };
    mpscq_t *q = bounded(CAP, 4);
    for (uintptr_t i = 0; i < CAP; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
    atomic_store(&about_to_sleep, 0);
    atomic_store(&hook_action, NULL);
    mpscq_test_hook = space_hook;
    struct waiter w[W];
    pthread_t t[W];
    for (int i = 0; i < W; i++) {
        w[i] = (struct waiter){ q, (void *)(uintptr_t)(100 + i), i & 1 ? -1 : LLONG_MAX, -1 };
        ck_assert_int_eq(pthread_create(&t[i], NULL, waiter_main, &w[i]), 0);
    }
    while (atomic_load(&about_to_sleep) < W)
        sched_yield();
    mpscq_close(q);
    for (int i = 0; i < W; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(atomic_load(&w[i].rc), MPSCQ_CLOSED);
    }
    mpscq_test_hook = NULL;
    void *m;
    for (uintptr_t i = 0; i < CAP; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)i);
    }
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_CLOSED);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* Many producers behind a small queue, all through mpscq_enqueue_wait with
 * no timeout, a consumer that sleeps too: everything arrives, in
 * per-producer order, and no producer is left asleep. */
enum { BP_PRODUCERS = 8 };
struct bp_prod {
    mpscq_t *q;
    unsigned id;
    uint64_t n;
};

static void *bp_producer(void *p)
{
    struct bp_prod *a = p;
    for (uint64_t i = 0; i < a->n; i++)
        ck_assert_int_eq(mpscq_enqueue_wait(a->q, tu_msg(a->id, i), -1), MPSCQ_OK);
    return NULL;
}

START_TEST(test_many_blocked_producers)
{
    static const size_t caps[] = { 1, 7, 64 };
    mpscq_t *q = bounded(caps[_i], 4);
    uint64_t n = tu_scaled(5000, 100);
    struct bp_prod a[BP_PRODUCERS];
    pthread_t t[BP_PRODUCERS];
    uint64_t expected[BP_PRODUCERS];
    for (unsigned i = 0; i < BP_PRODUCERS; i++) {
        a[i] = (struct bp_prod){ q, i, n };
        expected[i] = n;
        ck_assert_int_eq(pthread_create(&t[i], NULL, bp_producer, &a[i]), 0);
    }
    uint64_t next[BP_PRODUCERS] = { 0 }, got = 0;
    while (got < BP_PRODUCERS * n) {
        void *buf[16];
        size_t k = 0;
        int rc = mpscq_dequeue_batch_wait(q, buf, got & 1 ? 16 : 1, &k, -1);
        ck_assert_int_eq(rc, MPSCQ_OK);
        ck_assert_uint_ge(k, 1);
        for (size_t j = 0; j < k; j++) {
            unsigned p = tu_producer(buf[j]);
            ck_assert_uint_lt(p, BP_PRODUCERS);
            ck_assert_uint_eq(tu_seq(buf[j]), next[p]);
            next[p]++;
        }
        got += k;
    }
    for (unsigned i = 0; i < BP_PRODUCERS; i++) {
        pthread_join(t[i], NULL);
        ck_assert_uint_eq(next[i], expected[i]);
    }
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* ------------------------------------------------------------------ */
/* mpscq_dequeue_batch_wait                                             */

START_TEST(test_batch_wait)
{
    mpscq_t *q = bounded(0, 4);
    void *buf[8];
    size_t n = 77;
    ck_assert_int_eq(mpscq_dequeue_batch_wait(NULL, buf, 8, &n, 0), MPSCQ_INVAL);
    ck_assert_uint_eq(n, 0);
    n = 77;
    ck_assert_int_eq(mpscq_dequeue_batch_wait(q, NULL, 8, &n, 0), MPSCQ_INVAL);
    ck_assert_uint_eq(n, 0);
    n = 77;
    ck_assert_int_eq(mpscq_dequeue_batch_wait(q, buf, 0, &n, 0), MPSCQ_INVAL);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(mpscq_dequeue_batch_wait(q, buf, 8, NULL, 0), MPSCQ_INVAL);
    n = 77;
    ck_assert_int_eq(mpscq_dequeue_batch_wait(q, buf, 8, &n, 0), MPSCQ_TIMEOUT);
    ck_assert_uint_eq(n, 0);
    n = 77;
    ck_assert_int_eq(mpscq_dequeue_batch_wait(q, buf, 8, &n, 100000), MPSCQ_TIMEOUT);
    ck_assert_uint_eq(n, 0);
    for (uintptr_t i = 0; i < 11; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
    ck_assert_int_eq(mpscq_dequeue_batch_wait(q, buf, 8, &n, -1), MPSCQ_OK);
    ck_assert_uint_eq(n, 8);
    for (uintptr_t i = 0; i < 8; i++)
        ck_assert_ptr_eq(buf[i], (void *)i);
    /* After close: what is left, then CLOSED with *n = 0, at once. */
    mpscq_close(q);
    ck_assert_int_eq(mpscq_dequeue_batch_wait(q, buf, 8, &n, LLONG_MAX), MPSCQ_OK);
    ck_assert_uint_eq(n, 3);
    for (uintptr_t i = 0; i < 3; i++)
        ck_assert_ptr_eq(buf[i], (void *)(i + 8));
    n = 77;
    ck_assert_int_eq(mpscq_dequeue_batch_wait(q, buf, 8, &n, -1), MPSCQ_CLOSED);
    ck_assert_uint_eq(n, 0);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

struct late {
    mpscq_t *q;
    int close;
};

static void *late_main(void *p)
{
    struct late *l = p;
    /* Wait until the consumer sleeps, then send, or close. */
    while (!atomic_load_explicit(&((struct mpscq *)l->q)->parked, memory_order_acquire))
        sched_yield();
    if (l->close) {
        mpscq_close(l->q);
    } else {
        void *b[5] = { (void *)1, (void *)2, (void *)3, (void *)4, (void *)5 };
        ck_assert_int_eq(mpscq_enqueue_batch(l->q, b, 5), MPSCQ_OK);
    }
    return NULL;
}

/* A sleeping batch wait is woken by a producer (and gets the batch's
 * messages, in order) or by close (CLOSED, *n = 0). */
START_TEST(test_batch_wait_sleeps)
{
    for (int close = 0; close <= 1; close++) {
        mpscq_t *q = bounded(0, 4);
        struct late l = { q, close };
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, late_main, &l), 0);
        void *buf[8];
        size_t n = 77, got = 0;
        int rc = mpscq_dequeue_batch_wait(q, buf, 8, &n, -1);
        if (close) {
            ck_assert_int_eq(rc, MPSCQ_CLOSED);
            ck_assert_uint_eq(n, 0);
        } else {
            ck_assert_int_eq(rc, MPSCQ_OK);
            ck_assert_uint_ge(n, 1);
            for (;;) {
                for (size_t i = 0; i < n; i++)
                    ck_assert_ptr_eq(buf[i], (void *)(uintptr_t)(got + i + 1));
                got += n;
                if (got == 5)
                    break;
                ck_assert_int_eq(mpscq_dequeue_batch_wait(q, buf, 8, &n, -1), MPSCQ_OK);
            }
        }
        pthread_join(t, NULL);
        mpscq_destroy(q, NULL, NULL);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* mpscq_peek                                                           */

START_TEST(test_peek)
{
    mpscq_t *q = bounded(0, 4);
    void *m = (void *)0x1234;
    ck_assert_int_eq(mpscq_peek(NULL, &m), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_peek(q, NULL), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_peek(q, &m), MPSCQ_EMPTY);
    ck_assert_ptr_eq(m, (void *)0x1234);
    for (uintptr_t i = 0; i < 10; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
    /* Peek, peek again, then each dequeue call returns the same one. */
    for (uintptr_t i = 0; i < 10; i++) {
        ck_assert_int_eq(mpscq_peek(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)i);
        ck_assert_int_eq(mpscq_peek(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)i);
        ck_assert_uint_eq(mpscq_size(q), 10 - i); /* still in */
        void *buf[2];
        size_t n;
        switch (i % 4) {
        case 0:
            ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
            break;
        case 1:
            ck_assert_int_eq(mpscq_dequeue_wait(q, &m, 0), MPSCQ_OK);
            break;
        case 2:
            ck_assert_uint_eq(mpscq_dequeue_batch(q, buf, 1), 1);
            m = buf[0];
            break;
        default:
            ck_assert_int_eq(mpscq_dequeue_batch_wait(q, buf, 1, &n, 0), MPSCQ_OK);
            ck_assert_uint_eq(n, 1);
            m = buf[0];
            break;
        }
        ck_assert_ptr_eq(m, (void *)i);
    }
    ck_assert_int_eq(mpscq_peek(q, &m), MPSCQ_EMPTY);
    struct mpscq_stats st;
    mpscq_stats(q, &st);
    ck_assert_uint_eq(st.dequeued, 10);
    /* A batch after a peek: the peeked message first, then the rest. */
    for (uintptr_t i = 0; i < 6; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)(i + 20)), MPSCQ_OK);
    ck_assert_int_eq(mpscq_peek(q, &m), MPSCQ_OK);
    void *buf[8];
    ck_assert_uint_eq(mpscq_dequeue_batch(q, buf, 8), 6);
    for (uintptr_t i = 0; i < 6; i++)
        ck_assert_ptr_eq(buf[i], (void *)(i + 20));
    /* After close: the queued message is peeked, then CLOSED once drained. */
    ck_assert_int_eq(mpscq_enqueue(q, (void *)7), MPSCQ_OK);
    mpscq_close(q);
    ck_assert_int_eq(mpscq_peek(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)7);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)7);
    ck_assert_int_eq(mpscq_peek(q, &m), MPSCQ_CLOSED);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_CLOSED);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* In a bounded queue a peeked message keeps its place until dequeued. */
START_TEST(test_peek_bounded)
{
    mpscq_t *q = bounded(2, 2);
    void *m;
    ck_assert_int_eq(mpscq_enqueue(q, (void *)1), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(q, (void *)2), MPSCQ_OK);
    ck_assert_int_eq(mpscq_peek(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)1);
    ck_assert_int_eq(mpscq_enqueue(q, (void *)3), MPSCQ_FULL);
    ck_assert_int_eq(mpscq_enqueue_wait(q, (void *)3, 0), MPSCQ_TIMEOUT);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)1);
    ck_assert_int_eq(mpscq_enqueue_wait(q, (void *)3, 0), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue_wait(q, (void *)4, 0), MPSCQ_TIMEOUT);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)2);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)3);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* A peeked message left at destroy is dropped once, in order. */
static void drop_count(void *m, void *arg)
{
    uintptr_t *next = arg;
    ck_assert_ptr_eq(m, (void *)*next);
    (*next)++;
}

START_TEST(test_peek_destroy)
{
    mpscq_t *q = bounded(0, 2);
    for (uintptr_t i = 0; i < 5; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
    void *m;
    ck_assert_int_eq(mpscq_peek(q, &m), MPSCQ_OK);
    uintptr_t next = 0;
    mpscq_destroy(q, drop_count, &next);
    ck_assert_uint_eq(next, 5);
}
END_TEST

/* Peek while a producer is stopped between its ticket and its write:
 * like a dequeue, it passes the unwritten slot and shows the next
 * written message, then the stopped one once it is written. */
static _Atomic int stop_stalled, stop_release;
static _Thread_local int stop_me;
static void stop_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q; (void)t;
    if (where != MPSCQ_HOOK_AFTER_TICKET || !stop_me)
        return;
    stop_me = 0;
    atomic_store(&stop_stalled, 1);
    while (!atomic_load(&stop_release))
        sched_yield();
}

static void *stopped_producer(void *p)
{
    stop_me = 1;
    ck_assert_int_eq(mpscq_enqueue(p, (void *)100), MPSCQ_OK);
    return NULL;
}

START_TEST(test_peek_passes_stalled)
{
    mpscq_t *q = bounded(0, 4);
    atomic_store(&stop_stalled, 0);
    atomic_store(&stop_release, 0);
    mpscq_test_hook = stop_hook;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, stopped_producer, q), 0);
    while (!atomic_load(&stop_stalled))
        sched_yield();
    ck_assert_int_eq(mpscq_enqueue(q, (void *)200), MPSCQ_OK);
    void *m;
    ck_assert_int_eq(mpscq_peek(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)200);
    ck_assert_uint_eq(mpscq_size(q), 2);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)200);
    ck_assert_int_eq(mpscq_peek(q, &m), MPSCQ_EMPTY);
    atomic_store(&stop_release, 1);
    pthread_join(t, NULL);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(mpscq_peek(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)100);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)100);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* A preallocated queue and producers without handles: every live thread
 * keeps a spare segment, more than were preallocated; their waits must
 * still get in (a thread's own record allocates; only handles are
 * refused on a dry pool).  (Found by review: the 8th thread slept on an
 * empty queue.) */
enum { PW_THREADS = 16 };
static _Atomic int pw_done[PW_THREADS], pw_quit;
struct pw_arg {
    mpscq_t *q;
    int i;
};

static void *pw_main(void *p)
{
    struct pw_arg *a = p;
    atomic_store(&pw_done[a->i], 10 + mpscq_enqueue_wait(a->q, (void *)(uintptr_t)(a->i + 1),
                                                          20000000000LL));
    while (!atomic_load(&pw_quit)) /* stay alive: keep the record and its spare */
        sched_yield();
    return NULL;
}

START_TEST(test_preallocated_plain_waiters)
{
    mpscq_config c;
    mpscq_config_init(&c);
    c.capacity = 4;
    c.segment_slots = 4;
    c.preallocate = 1;
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    atomic_store(&pw_quit, 0);
    pthread_t t[PW_THREADS];
    struct pw_arg a[PW_THREADS];
    for (int i = 0; i < PW_THREADS; i++) {
        atomic_store(&pw_done[i], 0);
        a[i] = (struct pw_arg){ q, i };
        ck_assert_int_eq(pthread_create(&t[i], NULL, pw_main, &a[i]), 0);
        while (atomic_load(&pw_done[i]) == 0)
            sched_yield();
        ck_assert_int_eq(atomic_load(&pw_done[i]) - 10, MPSCQ_OK);
        void *m;
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)(uintptr_t)(i + 1));
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    }
    atomic_store(&pw_quit, 1);
    for (int i = 0; i < PW_THREADS; i++)
        pthread_join(t[i], NULL);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("backpressure");
    TCase *tc = tcase_create("enqueue_wait");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_exact_capacity, 0, 4);
    tcase_add_test(tc, test_timeout_keeps_nothing);
    tcase_add_test(tc, test_enqueue_wait_statuses);
    tcase_add_test(tc, test_no_lost_wakeup);
    tcase_add_test(tc, test_refusal_wakes_waiter);
    tcase_add_loop_test(tc, test_blocked_until_dequeue, 0, 2);
    tcase_add_test(tc, test_close_wakes_producers);
    tcase_add_test(tc, test_preallocated_plain_waiters);
    suite_add_tcase(s, tc);
    tc = tcase_create("many_producers");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_many_blocked_producers, 0, 3);
    suite_add_tcase(s, tc);
    tc = tcase_create("batch_wait");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_batch_wait);
    tcase_add_test(tc, test_batch_wait_sleeps);
    suite_add_tcase(s, tc);
    tc = tcase_create("peek");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_peek);
    tcase_add_test(tc, test_peek_bounded);
    tcase_add_test(tc, test_peek_destroy);
    tcase_add_test(tc, test_peek_passes_stalled);
    suite_add_tcase(s, tc);
    return s;
}

/* The suite twice: with the C twins of the hot paths, then (x86-64 NASM
 * builds) with the assembly dequeue, whose fast path has its own check
 * for a waiting producer (the test library dispatches every hot routine
 * through mpscq_impl, arch.h).  The enqueue stays C in both runs: the
 * hook tests stop producers at hooks only the C enqueue has, and
 * mpscq_enqueue_wait adds nothing to the assembly enqueue. */
int main(void)
{
    mpscq_impl = &mpscq_impl_base;
    int rc = tu_run("backpressure (C hot paths)", suite());
#ifdef MPSCQ_HAVE_ASM
    tu_use_asm_dequeue("c11 enqueue, x86_64-nasm dequeue");
    rc |= tu_run("backpressure (NASM dequeue)", suite());
#endif
    return rc;
}
