/*
 * capacity.h - bounded mode: the places producers take and the consumer
 * returns (doc/design.md s. 6).
 */
#ifndef MPSCQ_CAPACITY_H
#define MPSCQ_CAPACITY_H

#include "internal.h"

/* Take n places (one load decides the common FULL), or MPSCQ_FULL /
 * MPSCQ_CLOSED (counted in the statistics) having taken none. */
MPSCQ_HIDDEN int mpscq_take_credits(struct mpscq *q, size_t n);
/* Give back n places a failed enqueue took (nothing when unbounded). */
MPSCQ_HIDDEN void mpscq_return_credits(struct mpscq *q, size_t n);

/* Bounded mode: the consumer returns freed places to `credits` in batches
 * of credit_batch (design.md s. 6), so that its fast path has no locked
 * instruction: a consumer-private count, and one LOCK ADD per batch.
 * mpscq_credit_flush returns what is owed (on EMPTY, so that a queue the
 * consumer has drained accepts `capacity` messages again). */
static inline void mpscq_credit_flush(struct mpscq *q)
{
    if (q->credit_debt) {
        MPSCQ_RMW(1);
        /* Relaxed: a place is a count (capacity.c, mpscq_take_credits). */
        atomic_fetch_add_explicit(&q->credits, (int64_t)q->credit_debt, memory_order_relaxed);
        q->credit_debt = 0;
    }
}

static inline void mpscq_credit_one(struct mpscq *q)
{
    if (q->capacity && ++q->credit_debt >= q->credit_batch)
        mpscq_credit_flush(q);
}

#endif /* MPSCQ_CAPACITY_H */
