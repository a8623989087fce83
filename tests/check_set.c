/* check_set.c - queue sets: membership, priority order, round robin, the
 * fairness knob, sleeping over the members, close, and many producers. */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

#include "config.h"

#include "testutil.h"
#include "internal.h"

/* The test library's switch (internal.h): 1, sets poll as without
 * futex_waitv; 2, futex_waitv fails with EPERM.  The library's
 * mpscq_set_waitv_missing is 1 once futex_waitv failed (Valgrind,
 * qemu-user, kernels before 5.16, a seccomp filter): sets poll. */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static mpscq_t *new_queue(void)
{
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, NULL), MPSCQ_OK);
    return q;
}

static mpscq_set_t *new_set(void)
{
    mpscq_set_t *s = NULL;
    ck_assert_int_eq(mpscq_set_create(&s), MPSCQ_OK);
    ck_assert_ptr_nonnull(s);
    return s;
}

/* One message that must be there, from queue `want`. */
static void *take_from(mpscq_set_t *s, mpscq_t *want)
{
    mpscq_t *from = NULL;
    void *m = NULL;
    ck_assert_int_eq(mpscq_set_dequeue_wait(s, &from, &m, 0), MPSCQ_OK);
    ck_assert_ptr_eq(from, want);
    return m;
}

static unsigned long long parks(mpscq_t *q)
{
    struct mpscq_stats st;
    mpscq_stats(q, &st);
    return st.consumer_parks;
}

START_TEST(test_inval)
{
    ck_assert_int_eq(mpscq_set_create(NULL), MPSCQ_INVAL);
    mpscq_set_t *s = new_set(), *t = new_set();
    mpscq_t *q = new_queue(), *f = (mpscq_t *)1;
    void *m = (void *)7;
    ck_assert_int_eq(mpscq_set_add(NULL, q, 0), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_set_add(s, NULL, 0), MPSCQ_INVAL);
    /* No member: nothing could ever come. */
    ck_assert_int_eq(mpscq_set_dequeue_wait(s, &f, &m, 0), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_set_dequeue_wait(s, &f, &m, -1), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_set_add(s, q, 3), MPSCQ_OK);
    /* A queue belongs to one set: this one or another. */
    ck_assert_int_eq(mpscq_set_add(s, q, 3), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_set_add(t, q, 0), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_set_remove(t, q), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_set_remove(NULL, q), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_set_remove(s, NULL), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_set_dequeue_wait(NULL, &f, &m, 0), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_set_dequeue_wait(s, &f, NULL, 0), MPSCQ_INVAL);
    ck_assert_int_eq(mpscq_set_fairness(NULL, 1), MPSCQ_INVAL);
    /* Nothing was touched by the refusals. */
    ck_assert_ptr_eq(f, (mpscq_t *)1);
    ck_assert_ptr_eq(m, (void *)7);
    /* from may be NULL. */
    ck_assert_int_eq(mpscq_enqueue(q, (void *)9), MPSCQ_OK);
    ck_assert_int_eq(mpscq_set_dequeue_wait(s, NULL, &m, 0), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)9);
    mpscq_set_destroy(NULL);
    mpscq_set_destroy(t);
    mpscq_set_destroy(s);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

START_TEST(test_full)
{
    mpscq_set_t *s = new_set();
    mpscq_t *q[MPSCQ_SET_MAX + 1];
    for (unsigned i = 0; i < MPSCQ_SET_MAX; i++) {
        q[i] = new_queue();
        ck_assert_int_eq(mpscq_set_add(s, q[i], i % 5), MPSCQ_OK);
    }
    q[MPSCQ_SET_MAX] = new_queue();
    ck_assert_int_eq(mpscq_set_add(s, q[MPSCQ_SET_MAX], 0), MPSCQ_INVAL);
    /* The refused queue is in no set: another takes it. */
    mpscq_set_t *t = new_set();
    ck_assert_int_eq(mpscq_set_add(t, q[MPSCQ_SET_MAX], 0), MPSCQ_OK);
    /* The last member added (priority 127 % 5 = 2) has the message. */
    ck_assert_int_eq(mpscq_enqueue(q[MPSCQ_SET_MAX - 1], (void *)5), MPSCQ_OK);
    mpscq_t *from = NULL;
    void *m = NULL;
    ck_assert_int_eq(mpscq_set_dequeue_wait(s, &from, &m, 1000000), MPSCQ_OK);
    ck_assert_ptr_eq(from, q[MPSCQ_SET_MAX - 1]);
    ck_assert_ptr_eq(m, (void *)5);
    mpscq_set_destroy(s);
    mpscq_set_destroy(t);
    for (unsigned i = 0; i <= MPSCQ_SET_MAX; i++)
        mpscq_destroy(q[i], NULL, NULL);
}
END_TEST

START_TEST(test_empty_and_timeout)
{
    mpscq_set_t *s = new_set();
    mpscq_t *a = new_queue(), *b = new_queue();
    ck_assert_int_eq(mpscq_set_add(s, a, 0), MPSCQ_OK);
    ck_assert_int_eq(mpscq_set_add(s, b, 1), MPSCQ_OK);
    mpscq_t *from = (mpscq_t *)1;
    void *m = (void *)1;
    ck_assert_int_eq(mpscq_set_dequeue_wait(s, &from, &m, 0), MPSCQ_EMPTY);
    uint64_t t0 = now_ns();
    ck_assert_int_eq(mpscq_set_dequeue_wait(s, &from, &m, 3000000), MPSCQ_TIMEOUT);
    ck_assert_uint_ge(now_ns() - t0, 3000000);
    ck_assert_ptr_eq(from, (mpscq_t *)1);
    ck_assert_ptr_eq(m, (void *)1);
    /* The sleep left no member marked asleep: a producer pays no wake-up. */
    ck_assert_int_eq(mpscq_enqueue(b, (void *)2), MPSCQ_OK);
    m = take_from(s, b);
    mpscq_set_destroy(s);
    mpscq_destroy(a, NULL, NULL);
    mpscq_destroy(b, NULL, NULL);
}
END_TEST

/* Lower numbers first, whatever the order of adding and enqueuing; FIFO
 * within a queue. */
START_TEST(test_priority_order)
{
    mpscq_set_t *s = new_set();
    mpscq_t *low = new_queue(), *mid = new_queue(), *high = new_queue();
    ck_assert_int_eq(mpscq_set_add(s, mid, 5), MPSCQ_OK);
    ck_assert_int_eq(mpscq_set_add(s, low, 9), MPSCQ_OK);
    ck_assert_int_eq(mpscq_set_add(s, high, 0), MPSCQ_OK);
    for (uintptr_t i = 1; i <= 3; i++) {
        ck_assert_int_eq(mpscq_enqueue(low, (void *)(300 + i)), MPSCQ_OK);
        ck_assert_int_eq(mpscq_enqueue(mid, (void *)(200 + i)), MPSCQ_OK);
        ck_assert_int_eq(mpscq_enqueue(high, (void *)(100 + i)), MPSCQ_OK);
    }
    mpscq_t *want_q[] = { high, high, high, mid, mid, mid, low, low, low };
    uintptr_t want_m[] = { 101, 102, 103, 201, 202, 203, 301, 302, 303 };
    for (int i = 0; i < 9; i++) {
        void *m;
        m = take_from(s, want_q[i]);
        ck_assert_uint_eq((uintptr_t)m, want_m[i]);
        /* A high-priority message that comes now goes before the rest. */
        if (i == 4) {
            ck_assert_int_eq(mpscq_enqueue(high, (void *)104), MPSCQ_OK);
            m = take_from(s, high);
            ck_assert_uint_eq((uintptr_t)m, 104);
        }
    }
    void *m;
    ck_assert_int_eq(mpscq_set_dequeue_wait(s, NULL, &m, 0), MPSCQ_EMPTY);
    mpscq_set_destroy(s);
    mpscq_destroy(low, NULL, NULL);
    mpscq_destroy(mid, NULL, NULL);
    mpscq_destroy(high, NULL, NULL);
}
END_TEST

/* Equal priorities share: each of two busy queues gets 40-60 of the first
 * 100, and each keeps its own order. */
START_TEST(test_round_robin)
{
    mpscq_set_t *s = new_set();
    mpscq_t *a = new_queue(), *b = new_queue(), *c = new_queue();
    ck_assert_int_eq(mpscq_set_add(s, a, 1), MPSCQ_OK);
    ck_assert_int_eq(mpscq_set_add(s, b, 1), MPSCQ_OK);
    ck_assert_int_eq(mpscq_set_add(s, c, 2), MPSCQ_OK);
    for (uintptr_t i = 0; i < 200; i++) {
        ck_assert_int_eq(mpscq_enqueue(a, (void *)(1000 + i)), MPSCQ_OK);
        ck_assert_int_eq(mpscq_enqueue(b, (void *)(2000 + i)), MPSCQ_OK);
        ck_assert_int_eq(mpscq_enqueue(c, (void *)(3000 + i)), MPSCQ_OK);
    }
    uintptr_t next_a = 1000, next_b = 2000;
    int na = 0, nb = 0;
    for (int i = 0; i < 100; i++) {
        mpscq_t *from;
        void *m;
        ck_assert_int_eq(mpscq_set_dequeue_wait(s, &from, &m, 0), MPSCQ_OK);
        ck_assert(from == a || from == b);
        if (from == a) {
            ck_assert_uint_eq((uintptr_t)m, next_a++);
            na++;
        } else {
            ck_assert_uint_eq((uintptr_t)m, next_b++);
            nb++;
        }
    }
    ck_assert_int_ge(na, 40);
    ck_assert_int_le(na, 60);
    ck_assert_int_ge(nb, 40);
    ck_assert_int_le(nb, 60);
    mpscq_set_destroy(s);
    mpscq_destroy(a, NULL, NULL);
    mpscq_destroy(b, NULL, NULL);
    mpscq_destroy(c, NULL, NULL);
}
END_TEST

/* Strict by default: a busy high priority starves a lower one. */
START_TEST(test_strict)
{
    mpscq_set_t *s = new_set();
    mpscq_t *hi = new_queue(), *lo = new_queue();
    ck_assert_int_eq(mpscq_set_add(s, hi, 0), MPSCQ_OK);
    ck_assert_int_eq(mpscq_set_add(s, lo, 1), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(lo, (void *)1), MPSCQ_OK);
    for (uintptr_t i = 0; i < 1000; i++) {
        ck_assert_int_eq(mpscq_enqueue(hi, (void *)i), MPSCQ_OK);
        ck_assert_ptr_eq(take_from(s, hi), (void *)i);
    }
    mpscq_set_destroy(s);
    mpscq_destroy(hi, NULL, NULL);
    mpscq_destroy(lo, NULL, NULL);
}
END_TEST

/* With fairness k, a waiting lower priority gets one message after every
 * k from higher ones; with three busy levels the lowest gets its turn too. */
START_TEST(test_fairness)
{
    mpscq_set_t *s = new_set();
    mpscq_t *hi = new_queue(), *mid = new_queue(), *lo = new_queue();
    ck_assert_int_eq(mpscq_set_add(s, hi, 0), MPSCQ_OK);
    ck_assert_int_eq(mpscq_set_add(s, mid, 1), MPSCQ_OK);
    ck_assert_int_eq(mpscq_set_add(s, lo, 2), MPSCQ_OK);
    ck_assert_int_eq(mpscq_set_fairness(s, 3), MPSCQ_OK);
    for (uintptr_t i = 0; i < 100; i++) {
        ck_assert_int_eq(mpscq_enqueue(hi, (void *)i), MPSCQ_OK);
        ck_assert_int_eq(mpscq_enqueue(mid, (void *)i), MPSCQ_OK);
    }
    /* Two levels busy: H H H M, again and again. */
    for (int r = 0; r < 5; r++) {
        for (int i = 0; i < 4; i++)
            take_from(s, i < 3 ? hi : mid);
    }
    /* The lowest level gets a message too: its count grew all along, so it
     * is served at once, then the pattern repeats without starving it. */
    for (uintptr_t i = 0; i < 100; i++)
        ck_assert_int_eq(mpscq_enqueue(lo, (void *)i), MPSCQ_OK);
    int got[3] = { 0, 0, 0 }, last_lo = -1, max_gap = 0;
    for (int i = 0; i < 60; i++) {
        mpscq_t *from;
        void *m;
        ck_assert_int_eq(mpscq_set_dequeue_wait(s, &from, &m, 0), MPSCQ_OK);
        got[from == hi ? 0 : from == mid ? 1 : 2]++;
        if (from == lo) {
            if (i - last_lo > max_gap)
                max_gap = i - last_lo;
            last_lo = i;
        }
    }
    ck_assert_int_gt(got[2], 0);
    ck_assert_int_gt(got[1], 0);
    ck_assert_int_gt(got[0], got[1]);
    /* At most 3 higher messages (from hi or mid) between two of lo's,
     * plus mid's own turn. */
    ck_assert_int_le(max_gap, 5);
    /* Back to strict: only hi while it has messages. */
    ck_assert_int_eq(mpscq_set_fairness(s, 0), MPSCQ_OK);
    for (int i = 0; i < 10; i++)
        take_from(s, hi);
    mpscq_set_destroy(s);
    mpscq_destroy(hi, NULL, NULL);
    mpscq_destroy(mid, NULL, NULL);
    mpscq_destroy(lo, NULL, NULL);
}
END_TEST

/* A lower level found empty when its turn comes is passed over (strict
 * order goes on), and once it has a message it waits for at most k
 * higher-priority ones. */
START_TEST(test_fairness_empty_lower)
{
    const unsigned k = 2;
    mpscq_set_t *s = new_set();
    mpscq_t *hi = new_queue(), *lo = new_queue();
    ck_assert_int_eq(mpscq_set_add(s, hi, 0), MPSCQ_OK);
    ck_assert_int_eq(mpscq_set_add(s, lo, 1), MPSCQ_OK);
    ck_assert_int_eq(mpscq_set_fairness(s, k), MPSCQ_OK);
    for (uintptr_t i = 0; i < 40; i++)
        ck_assert_int_eq(mpscq_enqueue(hi, (void *)i), MPSCQ_OK);
    mpscq_t *from;
    void *m;
    uintptr_t next = 0;
    for (int round = 0; round < 5; round++) {
        /* lo empty: hi in order, however many turns lo had. */
        for (int i = 0; i < 3 + round; i++) {
            m = take_from(s, hi);
            ck_assert_uint_eq((uintptr_t)m, next++);
        }
        ck_assert_int_eq(mpscq_enqueue(lo, (void *)(uintptr_t)(100 + round)), MPSCQ_OK);
        unsigned before = 0;
        for (;;) {
            ck_assert_int_eq(mpscq_set_dequeue_wait(s, &from, &m, 0), MPSCQ_OK);
            if (from == lo)
                break;
            ck_assert_ptr_eq(from, hi);
            ck_assert_uint_eq((uintptr_t)m, next++);
            before++;
        }
        ck_assert_ptr_eq(m, (void *)(uintptr_t)(100 + round));
        ck_assert_uint_le(before, k);
    }
    mpscq_set_destroy(s);
    mpscq_destroy(hi, NULL, NULL);
    mpscq_destroy(lo, NULL, NULL);
}
END_TEST

/* A member the set found idle is then looked at with one load of its
 * ticket counter: the first enqueue after must still be seen at once, and
 * a bounded member's places all come back when it is drained. */
START_TEST(test_idle_member)
{
    mpscq_set_t *s = new_set();
    mpscq_config cfg;
    mpscq_config_init(&cfg);
    cfg.capacity = 8;
    cfg.segment_slots = 4;
    mpscq_t *hi = new_queue(), *b;
    ck_assert_int_eq(mpscq_create(&b, &cfg), MPSCQ_OK);
    ck_assert_int_eq(mpscq_set_add(s, hi, 0), MPSCQ_OK);
    ck_assert_int_eq(mpscq_set_add(s, b, 1), MPSCQ_OK);
    mpscq_t *from;
    void *m;
    for (uintptr_t round = 0; round < 50; round++) {
        /* Idle for a few looks... */
        for (int i = 0; i < 4; i++)
            ck_assert_int_eq(mpscq_set_dequeue_wait(s, &from, &m, 0), MPSCQ_EMPTY);
        /* ... then each member gets one message, seen by the next look. */
        ck_assert_int_eq(mpscq_enqueue(round & 1 ? hi : b, (void *)round), MPSCQ_OK);
        m = take_from(s, round & 1 ? hi : b);
        ck_assert_ptr_eq(m, (void *)round);
        /* The bounded member filled and drained: all 8 places back. */
        for (uintptr_t i = 0; i < 8; i++)
            ck_assert_int_eq(mpscq_enqueue(b, (void *)i), MPSCQ_OK);
        ck_assert_int_eq(mpscq_enqueue(b, (void *)9), MPSCQ_FULL);
        for (uintptr_t i = 0; i < 8; i++) {
            ck_assert_int_eq(mpscq_set_dequeue_wait(s, &from, &m, 0), MPSCQ_OK);
            ck_assert_ptr_eq(m, (void *)i);
        }
    }
    /* Closing an idle member is seen too. */
    mpscq_close(hi);
    mpscq_close(b);
    ck_assert_int_eq(mpscq_set_dequeue_wait(s, &from, &m, 0), MPSCQ_CLOSED);
    mpscq_set_destroy(s);
    mpscq_destroy(hi, NULL, NULL);
    mpscq_destroy(b, NULL, NULL);
}
END_TEST

struct sleeper {
    mpscq_set_t *s;
    long long timeout;
    int rc;
    mpscq_t *from;
    void *msg;
};

static void *sleeper_main(void *p)
{
    struct sleeper *w = p;
    w->rc = mpscq_set_dequeue_wait(w->s, &w->from, &w->msg, w->timeout);
    return NULL;
}

/* Start a set consumer waiting forever and return once it sleeps in the
 * kernel (an exact sleep: after the light one, whose timeout is 1 ms). */
static void start_sleeper(struct sleeper *w, pthread_t *th, mpscq_set_t *s, mpscq_t *watch)
{
    unsigned long long p0 = parks(watch);
    *w = (struct sleeper){ s, -1, -1, NULL, NULL };
    ck_assert_int_eq(pthread_create(th, NULL, sleeper_main, w), 0);
    while (parks(watch) < p0 + 2)
        sched_yield();
    /* Asleep, not spinning: with no producer and no timeout, nothing ends
     * the sleep, so the count stays while we give a busy loop 10 ms of
     * chances to show itself.  (Polling, without futex_waitv, ends a
     * sleep every 200 us by design.) */
    if (atomic_load(&mpscq_test_set_poll) || atomic_load(&mpscq_set_waitv_missing))
        return;
    unsigned long long p1 = parks(watch);
    uint64_t t0 = now_ns();
    while (now_ns() - t0 < 10000000)
        sched_yield();
    ck_assert_uint_eq(parks(watch), p1);
}

/* Each member's producer wakes the set's sleeping consumer. */
static void wake_by_each(void)
{
    mpscq_set_t *s = new_set();
    mpscq_t *q[3] = { new_queue(), new_queue(), new_queue() };
    for (unsigned i = 0; i < 3; i++)
        ck_assert_int_eq(mpscq_set_add(s, q[i], i), MPSCQ_OK);
    for (unsigned i = 0; i < 3; i++) {
        struct sleeper w;
        pthread_t th;
        start_sleeper(&w, &th, s, q[i]);
        ck_assert_int_eq(mpscq_enqueue(q[i], (void *)(uintptr_t)(10 + i)), MPSCQ_OK);
        pthread_join(th, NULL);
        ck_assert_int_eq(w.rc, MPSCQ_OK);
        ck_assert_ptr_eq(w.from, q[i]);
        ck_assert_ptr_eq(w.msg, (void *)(uintptr_t)(10 + i));
    }
    mpscq_set_destroy(s);
    for (unsigned i = 0; i < 3; i++)
        mpscq_destroy(q[i], NULL, NULL);
}

START_TEST(test_wake_by_each)
{
    wake_by_each();
}
END_TEST

/* The same without futex_waitv (old kernels, qemu-user, Valgrind). */
START_TEST(test_wake_by_each_poll)
{
    atomic_store(&mpscq_test_set_poll, 1);
    wake_by_each();
    atomic_store(&mpscq_test_set_poll, 0);
}
END_TEST

/* CLOSED only once every member is closed and drained; closing the last
 * wakes a sleeping consumer. */
START_TEST(test_close)
{
    mpscq_set_t *s = new_set();
    mpscq_t *a = new_queue(), *b = new_queue();
    ck_assert_int_eq(mpscq_set_add(s, a, 0), MPSCQ_OK);
    ck_assert_int_eq(mpscq_set_add(s, b, 1), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(a, (void *)1), MPSCQ_OK);
    mpscq_close(a);
    mpscq_t *from;
    void *m;
    m = take_from(s, a);
    /* a is closed and drained, b open and empty. */
    ck_assert_int_eq(mpscq_set_dequeue_wait(s, &from, &m, 0), MPSCQ_EMPTY);
    ck_assert_int_eq(mpscq_set_dequeue_wait(s, &from, &m, 1000000), MPSCQ_TIMEOUT);
    struct sleeper w;
    pthread_t th;
    start_sleeper(&w, &th, s, b);
    ck_assert_int_eq(mpscq_enqueue(b, (void *)2), MPSCQ_OK);
    pthread_join(th, NULL);
    ck_assert_int_eq(w.rc, MPSCQ_OK);
    ck_assert_ptr_eq(w.from, b);
    start_sleeper(&w, &th, s, b);
    mpscq_close(b);
    pthread_join(th, NULL);
    ck_assert_int_eq(w.rc, MPSCQ_CLOSED);
    ck_assert_int_eq(mpscq_set_dequeue_wait(s, &from, &m, 0), MPSCQ_CLOSED);
    ck_assert_int_eq(mpscq_set_dequeue_wait(s, &from, &m, -1), MPSCQ_CLOSED);
    mpscq_set_destroy(s);
    mpscq_destroy(a, NULL, NULL);
    mpscq_destroy(b, NULL, NULL);
}
END_TEST

/* After remove, destroy of the set, or destroy of the queue, a queue is
 * free again; its messages stay in it. */
START_TEST(test_membership)
{
    mpscq_set_t *s = new_set(), *t = new_set();
    mpscq_t *a = new_queue(), *b = new_queue();
    ck_assert_int_eq(mpscq_set_add(s, a, 0), MPSCQ_OK);
    ck_assert_int_eq(mpscq_set_add(s, b, 0), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(a, (void *)1), MPSCQ_OK);
    ck_assert_int_eq(mpscq_set_remove(s, a), MPSCQ_OK);
    ck_assert_int_eq(mpscq_set_remove(s, a), MPSCQ_INVAL);
    void *m;
    mpscq_t *from;
    ck_assert_int_eq(mpscq_set_dequeue_wait(s, &from, &m, 0), MPSCQ_EMPTY);
    ck_assert_int_eq(mpscq_set_add(t, a, 4), MPSCQ_OK);
    ck_assert_int_eq(mpscq_set_dequeue_wait(t, &from, &m, 0), MPSCQ_OK);
    ck_assert_ptr_eq(from, a);
    ck_assert_ptr_eq(m, (void *)1);
    /* Destroying the set frees b. */
    ck_assert_int_eq(mpscq_enqueue(b, (void *)2), MPSCQ_OK);
    mpscq_set_destroy(s);
    ck_assert_int_eq(mpscq_dequeue(b, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)2);
    ck_assert_int_eq(mpscq_set_add(t, b, 4), MPSCQ_OK);
    /* Destroying a member takes it out of its set. */
    mpscq_destroy(a, NULL, NULL);
    ck_assert_int_eq(mpscq_enqueue(b, (void *)3), MPSCQ_OK);
    ck_assert_int_eq(mpscq_set_dequeue_wait(t, &from, &m, 0), MPSCQ_OK);
    ck_assert_ptr_eq(from, b);
    mpscq_destroy(b, NULL, NULL);
    ck_assert_int_eq(mpscq_set_dequeue_wait(t, &from, &m, 0), MPSCQ_INVAL);
    mpscq_set_destroy(t);
}
END_TEST

/* Another thread inside a member's consumer call: the set says BUSY and
 * takes nothing. */
struct qwaiter {
    mpscq_t *q;
    int rc;
    void *m;
};

static void *qwaiter_main(void *p)
{
    struct qwaiter *w = p;
    w->rc = mpscq_dequeue_wait(w->q, &w->m, -1);
    return NULL;
}

START_TEST(test_busy)
{
    mpscq_set_t *s = new_set();
    mpscq_t *a = new_queue(), *b = new_queue();
    ck_assert_int_eq(mpscq_set_add(s, a, 0), MPSCQ_OK);
    ck_assert_int_eq(mpscq_set_add(s, b, 1), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(b, (void *)5), MPSCQ_OK);
    struct qwaiter w = { a, -1, NULL };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, qwaiter_main, &w), 0);
    while (parks(a) < 1) /* asleep inside mpscq_dequeue_wait(a) */
        sched_yield();
    mpscq_t *from = NULL;
    void *m = NULL;
    ck_assert_int_eq(mpscq_set_dequeue_wait(s, &from, &m, 0), MPSCQ_BUSY);
    ck_assert_ptr_null(from);
    ck_assert_ptr_null(m);
    ck_assert_int_eq(mpscq_enqueue(a, (void *)4), MPSCQ_OK);
    pthread_join(th, NULL);
    ck_assert_int_eq(w.rc, MPSCQ_OK);
    ck_assert_ptr_eq(w.m, (void *)4);
    /* b's message was left where it was. */
    m = take_from(s, b);
    ck_assert_ptr_eq(m, (void *)5);
    mpscq_set_destroy(s);
    mpscq_destroy(a, NULL, NULL);
    mpscq_destroy(b, NULL, NULL);
}
END_TEST

/* futex_waitv refused (EPERM, as under a seccomp filter that does not
 * know it): the set polls from then on instead of spinning, and every
 * member's producer still wakes it. */
START_TEST(test_waitv_refused)
{
    int was = atomic_load(&mpscq_set_waitv_missing);
    atomic_store(&mpscq_test_set_poll, 2);
    wake_by_each();
    ck_assert_int_eq(atomic_load(&mpscq_set_waitv_missing), 1);
    atomic_store(&mpscq_test_set_poll, 0);
    atomic_store(&mpscq_set_waitv_missing, was);
}
END_TEST

/* Polling, every round is light: an idle set pays no membarrier per
 * 200 us poll (a first version paid one each time: some 3 500 a second,
 * each interrupting the producers' CPUs). */
static _Atomic int barriers;

static void barrier_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    (void)t;
    if (where == MPSCQ_HOOK_BARRIER)
        atomic_fetch_add(&barriers, 1);
}

START_TEST(test_poll_pays_no_barrier)
{
    atomic_store(&mpscq_test_set_poll, 1);
    mpscq_set_t *s = new_set();
    mpscq_t *a = new_queue(), *b = new_queue();
    ck_assert_int_eq(mpscq_set_add(s, a, 0), MPSCQ_OK);
    ck_assert_int_eq(mpscq_set_add(s, b, 1), MPSCQ_OK);
    atomic_store(&barriers, 0);
    mpscq_test_hook = barrier_hook; /* before the sleeper starts */
    struct sleeper w;
    pthread_t th;
    start_sleeper(&w, &th, s, b);
    /* Several polls go by. */
    unsigned long long p0 = parks(b);
    while (parks(b) < p0 + 5)
        sched_yield();
    ck_assert_int_eq(mpscq_enqueue(b, (void *)3), MPSCQ_OK);
    pthread_join(th, NULL);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(w.rc, MPSCQ_OK);
    ck_assert_ptr_eq(w.msg, (void *)3);
    ck_assert_int_eq(atomic_load(&barriers), 0);
    atomic_store(&mpscq_test_set_poll, 0);
    mpscq_set_destroy(s);
    mpscq_destroy(a, NULL, NULL);
    mpscq_destroy(b, NULL, NULL);
}
END_TEST

/* The race the sleep protocol exists for: a producer of an idle,
 * lower-priority member enqueues after the set's last look and before it
 * sleeps (at MPSCQ_HOOK_PARK of an exact round).  The producer must see
 * the consumer parked and wake it, and the set must return the message:
 * with timeout -1 a lost wake-up hangs the test.  _i = 1: the members
 * have no membarrier (producers fence). */
static mpscq_t *race_q;
static _Atomic int race_go, race_done, race_fired;

static void *race_producer(void *arg)
{
    (void)arg;
    while (!atomic_load(&race_go))
        sched_yield();
    ck_assert_int_eq(mpscq_enqueue(race_q, (void *)77), MPSCQ_OK);
    atomic_store(&race_done, 1);
    return NULL;
}

static void race_hook(int where, const struct mpscq *q, uint64_t light)
{
    (void)q;
    /* Polling (Valgrind, qemu-user), every round is light. */
    int polling = atomic_load(&mpscq_test_set_poll) || atomic_load(&mpscq_set_waitv_missing);
    if (where != MPSCQ_HOOK_PARK || (light && !polling) || atomic_load(&race_fired))
        return;
    atomic_store(&race_fired, 1);
    atomic_store(&race_go, 1);
    while (!atomic_load(&race_done))
        sched_yield();
}

START_TEST(test_wake_at_sleep)
{
    mpscq_set_t *s = new_set();
    mpscq_t *hi = new_queue(), *lo = new_queue();
    if (_i) {
        hi->need_fence = 1;
        lo->need_fence = 1;
    }
    ck_assert_int_eq(mpscq_set_add(s, hi, 0), MPSCQ_OK);
    ck_assert_int_eq(mpscq_set_add(s, lo, 1), MPSCQ_OK);
    mpscq_t *from;
    void *m;
    /* lo idle: later looks at it are one load of its ticket counter. */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(mpscq_set_dequeue_wait(s, &from, &m, 0), MPSCQ_EMPTY);
    race_q = lo;
    atomic_store(&race_go, 0);
    atomic_store(&race_done, 0);
    atomic_store(&race_fired, 0);
    unsigned long wakes = atomic_load(&mpscq_test_producer_wakes);
    pthread_t th;
    /* Set before the producer starts and cleared after it ends: it
     * reads the hook too. */
    mpscq_test_hook = race_hook;
    ck_assert_int_eq(pthread_create(&th, NULL, race_producer, NULL), 0);
    int rc = mpscq_set_dequeue_wait(s, &from, &m, -1);
    pthread_join(th, NULL);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(atomic_load(&race_fired), 1);
    ck_assert_int_eq(rc, MPSCQ_OK);
    ck_assert_ptr_eq(from, lo);
    ck_assert_ptr_eq(m, (void *)77);
    /* The producer found the consumer parked and paid the wake-up. */
    ck_assert_uint_gt(atomic_load(&mpscq_test_producer_wakes), wakes);
    mpscq_set_destroy(s);
    mpscq_destroy(hi, NULL, NULL);
    mpscq_destroy(lo, NULL, NULL);
}
END_TEST

/* Naps (a set's wait before it sleeps until woken): a producer that
 * enqueues during one pays no wake-up (the nap runs out by itself), and
 * mpscq_close of a member ends one at once.  The action runs in another
 * thread while the set's thread stands at its first nap. */
static mpscq_t *nap_q;
static int nap_close;
static _Atomic int nap_go, nap_done, nap_fired, nap_timed_out;

static void *nap_actor(void *arg)
{
    (void)arg;
    while (!atomic_load(&nap_go))
        sched_yield();
    if (nap_close)
        mpscq_close(nap_q);
    else
        ck_assert_int_eq(mpscq_enqueue(nap_q, (void *)66), MPSCQ_OK);
    atomic_store(&nap_done, 1);
    return NULL;
}

static void nap_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    if (where == MPSCQ_HOOK_NAP && !atomic_load(&nap_fired)) {
        atomic_store(&nap_fired, 1);
        atomic_store(&nap_go, 1);
        while (!atomic_load(&nap_done))
            sched_yield();
    } else if (where == MPSCQ_HOOK_NAPPED && atomic_load(&nap_fired) == 1) {
        atomic_store(&nap_fired, 2);
        atomic_store(&nap_timed_out, (int)t);
    }
}

static int nap_run(int close_it, mpscq_t **from, void **m)
{
    mpscq_set_t *s = new_set();
    mpscq_config cfg;
    mpscq_config_init(&cfg);
    /* 1 s naps when closing: a nap the close did not end would time out. */
    cfg.nap_ns = close_it ? MPSCQ_NAP_MAX_NS : 0;
    mpscq_t *hi, *lo;
    ck_assert_int_eq(mpscq_create(&hi, &cfg), MPSCQ_OK);
    ck_assert_int_eq(mpscq_create(&lo, &cfg), MPSCQ_OK);
    ck_assert_int_eq(mpscq_set_add(s, hi, 0), MPSCQ_OK);
    ck_assert_int_eq(mpscq_set_add(s, lo, 1), MPSCQ_OK);
    if (close_it)
        mpscq_close(hi);
    nap_q = lo;
    nap_close = close_it;
    atomic_store(&nap_go, 0);
    atomic_store(&nap_done, 0);
    atomic_store(&nap_fired, 0);
    atomic_store(&nap_timed_out, -1);
    pthread_t th;
    mpscq_test_hook = nap_hook; /* before the actor starts: it reads it */
    ck_assert_int_eq(pthread_create(&th, NULL, nap_actor, NULL), 0);
    int rc = mpscq_set_dequeue_wait(s, from, m, -1);
    pthread_join(th, NULL);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(atomic_load(&nap_fired), 2);
    mpscq_set_destroy(s);
    mpscq_destroy(hi, NULL, NULL);
    mpscq_destroy(lo, NULL, NULL);
    return rc;
}

START_TEST(test_nap_producer_pays_no_wake)
{
    unsigned long wakes = atomic_load(&mpscq_test_producer_wakes);
    mpscq_t *from;
    void *m;
    ck_assert_int_eq(nap_run(0, &from, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)66);
    ck_assert_int_eq(atomic_load(&nap_timed_out), 1); /* it ran out by itself */
    ck_assert_uint_eq(atomic_load(&mpscq_test_producer_wakes), wakes);
}
END_TEST

START_TEST(test_close_ends_nap)
{
    mpscq_t *from;
    void *m;
    ck_assert_int_eq(nap_run(1, &from, &m), MPSCQ_CLOSED);
    ck_assert_int_eq(atomic_load(&nap_timed_out), 0); /* ended, not run out */
}
END_TEST

/* Closing one member while the set sleeps over several: the set wakes,
 * finds it drained, and sleeps again over the others (not spinning on
 * the closed member's word); then a message and the last close end it. */
START_TEST(test_close_one_while_asleep)
{
    mpscq_set_t *s = new_set();
    mpscq_t *a = new_queue(), *b = new_queue();
    ck_assert_int_eq(mpscq_set_add(s, a, 0), MPSCQ_OK);
    ck_assert_int_eq(mpscq_set_add(s, b, 1), MPSCQ_OK);
    struct sleeper w;
    pthread_t th;
    start_sleeper(&w, &th, s, b);
    unsigned long long pa = parks(a), pb = parks(b);
    mpscq_close(a);
    /* It slept again: once more over b alone (a is drained). */
    while (parks(b) < pb + 1)
        sched_yield();
    if (!atomic_load(&mpscq_test_set_poll) && !atomic_load(&mpscq_set_waitv_missing)) {
        unsigned long long p1 = parks(b);
        uint64_t t0 = now_ns();
        while (now_ns() - t0 < 10000000)
            sched_yield();
        ck_assert_uint_eq(parks(b), p1);
        ck_assert_uint_eq(parks(a), pa); /* not counted once drained */
    }
    ck_assert_int_eq(mpscq_enqueue(b, (void *)8), MPSCQ_OK);
    pthread_join(th, NULL);
    ck_assert_int_eq(w.rc, MPSCQ_OK);
    ck_assert_ptr_eq(w.from, b);
    start_sleeper(&w, &th, s, b);
    mpscq_close(b);
    pthread_join(th, NULL);
    ck_assert_int_eq(w.rc, MPSCQ_CLOSED);
    mpscq_set_destroy(s);
    mpscq_destroy(a, NULL, NULL);
    mpscq_destroy(b, NULL, NULL);
}
END_TEST

/* Producers on every member, tiny segments, a consumer that sleeps
 * whenever it can: every message exactly once, each producer in order,
 * CLOSED after the last. */
enum { NQ = 3, PER_Q = 2 };

struct prod {
    mpscq_t *q;
    unsigned id;
    uint64_t n;
};

static void *prod_main(void *p)
{
    struct prod *pr = p;
    for (uint64_t i = 0; i < pr->n; i++) {
        while (mpscq_enqueue(pr->q, tu_msg(pr->id, i)) != MPSCQ_OK)
            sched_yield();
        if ((i & 255) == 0)
            sched_yield();
    }
    return NULL;
}

START_TEST(test_many_producers)
{
    mpscq_set_t *s = new_set();
    mpscq_t *q[NQ];
    mpscq_config cfg;
    mpscq_config_init(&cfg);
    cfg.segment_slots = 4;
    for (unsigned i = 0; i < NQ; i++) {
        cfg.capacity = i == 1 ? 64 : 0; /* one bounded member */
        ck_assert_int_eq(mpscq_create(&q[i], &cfg), MPSCQ_OK);
        ck_assert_int_eq(mpscq_set_add(s, q[i], i / 2), MPSCQ_OK);
    }
    struct prod pr[NQ * PER_Q];
    pthread_t th[NQ * PER_Q];
    uint64_t per = tu_scaled(20000, 500);
    for (unsigned i = 0; i < NQ * PER_Q; i++) {
        pr[i] = (struct prod){ q[i % NQ], i, per };
        ck_assert_int_eq(pthread_create(&th[i], NULL, prod_main, &pr[i]), 0);
    }
    uint64_t next[NQ * PER_Q] = { 0 }, got = 0, total = per * NQ * PER_Q;
    while (got < total) {
        mpscq_t *from;
        void *m;
        int rc = mpscq_set_dequeue_wait(s, &from, &m, -1);
        ck_assert_int_eq(rc, MPSCQ_OK);
        unsigned p = tu_producer(m);
        ck_assert_uint_lt(p, NQ * PER_Q);
        ck_assert_ptr_eq(from, q[p % NQ]);
        ck_assert_uint_eq(tu_seq(m), next[p]);
        next[p]++;
        got++;
    }
    for (unsigned i = 0; i < NQ * PER_Q; i++)
        pthread_join(th[i], NULL);
    for (unsigned i = 0; i < NQ; i++)
        mpscq_close(q[i]);
    mpscq_t *from;
    void *m;
    ck_assert_int_eq(mpscq_set_dequeue_wait(s, &from, &m, -1), MPSCQ_CLOSED);
    mpscq_set_destroy(s);
    for (unsigned i = 0; i < NQ; i++)
        mpscq_destroy(q[i], NULL, NULL);
}
END_TEST

static Suite *set_suite(void)
{
    Suite *s = suite_create("set");
    TCase *tc = tcase_create("set");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_inval);
    tcase_add_test(tc, test_full);
    tcase_add_test(tc, test_empty_and_timeout);
    tcase_add_test(tc, test_priority_order);
    tcase_add_test(tc, test_round_robin);
    tcase_add_test(tc, test_strict);
    tcase_add_test(tc, test_fairness);
    tcase_add_test(tc, test_fairness_empty_lower);
    tcase_add_test(tc, test_idle_member);
    tcase_add_test(tc, test_wake_by_each);
    tcase_add_test(tc, test_wake_by_each_poll);
    tcase_add_test(tc, test_waitv_refused);
    tcase_add_test(tc, test_poll_pays_no_barrier);
    tcase_add_loop_test(tc, test_wake_at_sleep, 0, 2);
    tcase_add_test(tc, test_close_one_while_asleep);
    tcase_add_test(tc, test_nap_producer_pays_no_wake);
    tcase_add_test(tc, test_close_ends_nap);
    tcase_add_test(tc, test_close);
    tcase_add_test(tc, test_membership);
    tcase_add_test(tc, test_busy);
    tcase_add_test(tc, test_many_producers);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run("check_set", set_suite());
}
