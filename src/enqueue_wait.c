/*
 * enqueue_wait.c - backpressure: a producer that waits for a place in a
 * full bounded queue (doc/design.md s. 6.3).
 *
 * A waiting producer yields a few times, then arms `space_armed`, pulls
 * `released` up to `dequeued` (the places the consumer freed but has not
 * published yet: they are published in batches), retries, and only then
 * sleeps on the futex word `space_seq`.  Its first rounds are light: a
 * fence only, and a sleep of at most 1 ms, which bounds a wake-up missed
 * while the consumer's store of `dequeued` sat in its store buffer.  After
 * a light sleep that timed out, rounds are exact: membarrier (the same
 * asymmetric barrier the sleeping consumer uses) makes the arm and the
 * consumer's latest `dequeued` mutually visible, and the sleep is
 * unbounded.  The consumer, after each bounded dequeue, reads
 * `space_armed` with a plain load and, only when it is set, publishes
 * every place, bumps `space_seq` and wakes the waiters.  So producers that
 * do not wait pay nothing for this, and the consumer pays one load.
 */
#include "config.h"

#include <sched.h>
#include <time.h>

#include "arch.h"
#include "capacity.h"
#include "consumer.h"
#include "wait.h"

/* Without membarrier (need_fence) the consumer's check can miss an arm
 * (it has no fence of its own): the waiter then wakes this often to look. */
#define SPACE_POLL_NS 200000u
/* A light round's sleep: the bound on what a missed wake-up costs. */
#define SPACE_LIGHT_NS 1000000u
/* Yields before a waiter arms (below). */
#define SPACE_YIELDS 4

/* Pull `released` up to `dequeued`: the places the consumer has freed,
 * published now rather than at its next batch.  Any producer may do it;
 * the consumer's own stores are of its latest `dequeued`, so released
 * never goes back (capacity.h). */
static void space_take(struct mpscq *q)
{
    /* Relaxed: the CAS below checks it. */
    uint64_t r = atomic_load_explicit(&q->released, memory_order_relaxed);
    /* Acquire: pairs with the consumer's release store of dequeued, so
     * the dequeues counted happen before our admission (strict capacity,
     * design.md s. 6). */
    uint64_t d = atomic_load_explicit(&q->dequeued, memory_order_acquire);
    /* Release on success: a producer whose mpscq_admit reads this value
     * (acquire) then happens after those dequeues too.  A failure means
     * someone raised it; go on while it is still below d. */
    while (r < d && !atomic_compare_exchange_weak_explicit(&q->released, &r, d,
                                                           memory_order_release,
                                                           memory_order_relaxed))
        MPSCQ_RMW(1);
    MPSCQ_RMW(r < d);
}

void mpscq_space_wake(struct mpscq *q)
{
    /* seq_cst XCHG: of the waiters armed before it, this wake-up serves
     * all (the bump below is after it); one that arms after it is seen by
     * the next dequeue.  A locked instruction only when someone waits. */
    MPSCQ_RMW(1);
    if (!atomic_exchange_explicit(&q->space_armed, 0, memory_order_seq_cst))
        return;
    MPSCQ_TEST_HOOK(MPSCQ_HOOK_SPACE_WAKE, q,
                    atomic_load_explicit(&q->dequeued, memory_order_relaxed));
    /* Every freed place now, not at the next batch: the woken producer
     * gets in at once.  Release, as mpscq_release_flush (the consumer is
     * the caller). */
    if (q->many) {
        /* Many consumers: raised, never stored (capacity.h's rule with
         * several writers; consumers.c). */
        space_take(q);
    } else {
        atomic_store_explicit(&q->released,
                              atomic_load_explicit(&q->dequeued, memory_order_relaxed),
                              memory_order_release);
        q->release_debt = 0;
    }
    /* seq_cst RMW, after the stores above: a waiter whose futex compare
     * sees the new value (or who is queued when the wake runs) retries and
     * sees the places. */
    MPSCQ_RMW(1);
    atomic_fetch_add_explicit(&q->space_seq, 1, memory_order_seq_cst);
    mpscq_futex_wake_all(&q->space_seq);
}

void mpscq_space_wake_producer(struct mpscq *q)
{
    /* A producer's wake-up: no `released` to publish (only the consumer
     * writes it that way), the room is in `rejected`.  seq_cst XCHG and
     * bump, as mpscq_space_wake. */
    MPSCQ_RMW(1);
    if (!atomic_exchange_explicit(&q->space_armed, 0, memory_order_seq_cst))
        return;
    MPSCQ_RMW(1);
    atomic_fetch_add_explicit(&q->space_seq, 1, memory_order_seq_cst);
    mpscq_futex_wake_all(&q->space_seq);
}

int mpscq_dequeue_woke(struct mpscq *q, int crossed, int out)
{
    mpscq_space_wake(q);
    if (crossed)
        return out ? mpscq_dequeue_crossed_out(q) : mpscq_dequeue_crossed(q);
    if (out)
        mpscq_consumer_exit();
    return MPSCQ_OK;
}

void mpscq_space_wake_close(struct mpscq *q)
{
    /* seq_cst RMW after the closing fetch_or on tail (seq_cst): a waiter
     * that sees the new value, or is woken, then sees the closed bit in
     * its retry and returns MPSCQ_CLOSED. */
    MPSCQ_RMW(1);
    atomic_fetch_add_explicit(&q->space_seq, 1, memory_order_seq_cst);
    mpscq_futex_wake_all(&q->space_seq);
}

int mpscq_enqueue_wait(mpscq_t *q, void *msg, long long timeout_ns)
{
    if (!q)
        return MPSCQ_INVAL;
    int rc = mpscq_enqueue(q, msg);
    if (rc != MPSCQ_FULL)
        return rc;
    /* Places the consumer freed but has not published yet are ours to
     * take before anything else: a fresh bounded queue accepts exactly
     * capacity messages, and one more as soon as one is dequeued. */
    space_take(q);
    rc = mpscq_enqueue(q, msg);
    if (rc != MPSCQ_FULL)
        return rc;
    if (timeout_ns == 0)
        return MPSCQ_TIMEOUT;
    uint64_t deadline = mpscq_deadline(timeout_ns);
    MPSCQ_STAT_ADD(q, st_waits, 1);
    /* Before paying for the barrier and the futex: give the processor to
     * the consumer a few times (on an oversubscribed machine it is often
     * the thread waiting for one) and look again. */
    for (int i = 0; i < SPACE_YIELDS; i++) {
        sched_yield();
        space_take(q);
        rc = mpscq_enqueue(q, msg);
        if (rc != MPSCQ_FULL)
            return rc;
        if (timeout_ns > 0 && mpscq_mono_ns() >= deadline)
            return MPSCQ_TIMEOUT;
    }
    /* Rounds are light (a fence, no membarrier, a sleep of at most
     * SPACE_LIGHT_NS) until a sleep ends without a wake-up; the next round
     * is then exact (design.md s. 6.3). */
    int light = 1;
    for (;;) {
        /* Acquire, before arming: a wake-up (seq_cst bump) that comes
         * after this load changes the value our futex wait compares. */
        int seq = atomic_load_explicit(&q->space_seq, memory_order_acquire);
        /* seq_cst: the Dekker store.  The fence orders it before our loads
         * below; in an exact round the membarrier also orders it against
         * the consumer's plain load of it: either the consumer sees the
         * arm after its next dequeue, or our space_take sees that dequeue.
         * In a light round the consumer's store of dequeued may still be
         * in its store buffer when it reads an old 0: a miss, which the
         * light sleep's bound turns into a delay. */
        atomic_store_explicit(&q->space_armed, 1, memory_order_seq_cst);
        if (light)
            atomic_thread_fence(memory_order_seq_cst);
        else
            mpscq_wait_barrier(q);
        space_take(q);
        rc = mpscq_enqueue(q, msg);
        if (rc != MPSCQ_FULL)
            return rc;
        MPSCQ_TEST_HOOK(MPSCQ_HOOK_SPACE_RETRIED, q, (uint64_t)seq);
        uint64_t now = mpscq_mono_ns();
        if (now >= deadline)
            return MPSCQ_TIMEOUT;
        uint64_t left = deadline - now;
        uint64_t bound = light ? SPACE_LIGHT_NS : q->need_fence ? SPACE_POLL_NS : UINT64_MAX;
        if (left > bound)
            left = bound;
        struct timespec rel, *relp = NULL;
        if (left != UINT64_MAX) {
            rel.tv_sec = (time_t)(left / 1000000000u);
            rel.tv_nsec = (long)(left % 1000000000u);
            relp = &rel;
        }
        /* Woken, a changed seq, a timeout or a signal: all retry.  Only a
         * light sleep that timed out makes the next round exact. */
        int timed_out = mpscq_futex_wait(&q->space_seq, seq, relp);
        MPSCQ_TEST_HOOK(MPSCQ_HOOK_SPACE_SLEPT, q, (uint64_t)timed_out);
        if (timed_out)
            light = 0;
    }
}
