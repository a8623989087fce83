/*
 * capacity.c - bounded mode: admission of producers against the places
 * the consumer returns (doc/design.md s. 6).
 */
#include "config.h"

#include "capacity.h"

/* Reserve n places in a bounded queue: one load decides the common FULL,
 * then a fetch-and-add with rollback keeps admission exact under races. */
int mpscq_take_credits(struct mpscq *q, size_t n)
{
    /* Relaxed: credits order nothing but themselves (tickets are never
     * reused, so a returned credit guards no memory). */
    if (atomic_load_explicit(&q->credits, memory_order_relaxed) < (int64_t)n) {
        if (atomic_load_explicit(&q->tail, memory_order_relaxed) & MPSCQ_TAIL_CLOSED) {
            MPSCQ_STAT_ADD(q, st_closed, 1);
            return MPSCQ_CLOSED;
        }
        MPSCQ_STAT_ADD(q, st_full, 1);
        return MPSCQ_FULL;
    }
    MPSCQ_RMW(1);
    int64_t old = atomic_fetch_sub_explicit(&q->credits, (int64_t)n, memory_order_relaxed);
    if (old < (int64_t)n) {
        MPSCQ_RMW(1);
        atomic_fetch_add_explicit(&q->credits, (int64_t)n, memory_order_relaxed);
        MPSCQ_STAT_ADD(q, st_full, 1);
        return MPSCQ_FULL;
    }
    return MPSCQ_OK;
}

void mpscq_return_credits(struct mpscq *q, size_t n)
{
    if (q->capacity) {
        MPSCQ_RMW(1);
        atomic_fetch_add_explicit(&q->credits, (int64_t)n, memory_order_relaxed);
    }
}
