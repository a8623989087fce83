/*
 * capacity.h - bounded mode: admission by ticket (doc/design.md s. 6).
 *
 * A bounded enqueue takes its tickets like any other, with the one
 * fetch-and-add on tail, and is admitted when its last ticket is below
 *
 *     admit = released + rejected + capacity,
 *
 * both counts read before the ticket: `released` is how many messages the
 * consumer has dequeued (published by it in batches, plain stores) and
 * `rejected` how many tickets were refused.  A refused enqueue counts its
 * tickets in `rejected` and marks their slots MPSCQ_SLOT_SKIP, which the
 * consumer passes.  So no side writes a line the other writes per
 * message, the dequeue fast path has no locked instruction, and the
 * bounded enqueue has the same one as the unbounded.
 */
#ifndef MPSCQ_CAPACITY_H
#define MPSCQ_CAPACITY_H

#include "internal.h"
#include "hazard.h"

/* The first ticket not admitted now; MPSCQ_ADMIT_ALL when unbounded. */
static inline uint64_t mpscq_admit(struct mpscq *q)
{
    if (!q->capacity)
        return MPSCQ_ADMIT_ALL;
    /* Acquire, both, and before our ticket: a dequeue counted in released
     * (the consumer's release store) and a refusal counted in rejected
     * (the refuser's release RMW) are then of tickets issued before ours,
     * which is what keeps the capacity strict (design.md s. 6). */
    return atomic_load_explicit(&q->released, memory_order_acquire) +
           atomic_load_explicit(&q->rejected, memory_order_acquire) + q->capacity;
}

/* The FULL check that takes no ticket: n tickets cannot be admitted when
 * even the tickets r knows were issued leave no room.  MPSCQ_OK with
 * *admit set, else MPSCQ_FULL or MPSCQ_CLOSED (counted in the
 * statistics).  Bounded queues only. */
MPSCQ_HIDDEN int mpscq_admit_check(struct mpscq *q, struct mpscq_hp_rec *r, uint64_t n,
                                   uint64_t *admit);

/* Count n refused tickets (before their slots are marked). */
MPSCQ_HIDDEN void mpscq_reject_count(struct mpscq *q, struct mpscq_hp_rec *r, uint64_t t,
                                     uint64_t n);

/* The consumer publishes its dequeues in batches of release_batch
 * (capacity / 8, 1 to 64), and all of them whenever it finds nothing to
 * take: a consumer-private count and one plain store per batch.  The
 * store is absolute (released = dequeued), not an increment, because a
 * producer waiting for a place may pull `released` up to `dequeued` itself
 * (enqueue_wait.c): both write values `dequeued` had, and the consumer's is
 * its latest, so released never goes back (design.md s. 6.3). */
static inline void mpscq_release_flush(struct mpscq *q)
{
    if (q->release_debt) {
        /* Release: the dequeues counted happen before a producer's acquire
         * load in mpscq_admit.  Relaxed load: the consumer wrote it. */
        atomic_store_explicit(&q->released,
                              atomic_load_explicit(&q->dequeued, memory_order_relaxed),
                              memory_order_release);
        q->release_debt = 0;
    }
}

/* A producer waits in mpscq_enqueue_wait: give it the places now
 * (enqueue_wait.c).  Consumer only. */
MPSCQ_HIDDEN void mpscq_space_wake(struct mpscq *q);
/* A refused producer's: its count in `rejected` made room; wake waiters. */
MPSCQ_HIDDEN void mpscq_space_wake_producer(struct mpscq *q);
/* The C dequeue fast path's tail when a producer waits: wake it, then
 * mpscq_dequeue_crossed(q) if the take crossed a segment, else MPSCQ_OK;
 * out: leave the consumer call too (the mpscq_dequeue entry's). */
MPSCQ_HIDDEN int mpscq_dequeue_woke(struct mpscq *q, int crossed, int out);

/* After each dequeue's store of `dequeued` (bounded queues): a place is
 * free, so a waiting producer is woken now (design.md s. 6.3).  The
 * armed flag is read with a plain load: in a waiter's exact rounds its
 * membarrier orders it against the store of dequeued (a compiler fence
 * here keeps the program order); in its light rounds nothing does, and
 * the light sleep's 1 ms bound is what a miss costs. */
static inline void mpscq_space_check(struct mpscq *q)
{
    atomic_signal_fence(memory_order_seq_cst);
    /* Relaxed: the waiter's barrier supplies the ordering (above). */
    if (MPSCQ_UNLIKELY(atomic_load_explicit(&q->space_armed, memory_order_relaxed)))
        mpscq_space_wake(q);
}

static inline void mpscq_release_one(struct mpscq *q)
{
    if (q->capacity) {
        if (++q->release_debt >= q->release_batch)
            mpscq_release_flush(q);
        mpscq_space_check(q);
    }
}

#endif /* MPSCQ_CAPACITY_H */
