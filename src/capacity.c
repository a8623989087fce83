/*
 * capacity.c - bounded mode: admission by ticket (doc/design.md s. 6).
 */
#include "config.h"

#include "capacity.h"

int mpscq_admit_check(struct mpscq *q, struct mpscq_hp_rec *r, uint64_t n, uint64_t *admit)
{
    uint64_t a = mpscq_admit(q);
    /* r->seen <= tail: tickets up to it were issued, so if they leave no
     * room now, none is to be had (FULL is honest; design.md s. 6). */
    if (r->seen + n > a) {
        /* Relaxed: only the closed bit is wanted, to say CLOSED rather
         * than FULL on a closed, full queue. */
        if (atomic_load_explicit(&q->tail, memory_order_relaxed) & MPSCQ_TAIL_CLOSED) {
            MPSCQ_STAT_ADD(q, st_closed, 1);
            return MPSCQ_CLOSED;
        }
        MPSCQ_STAT_ADD(q, st_full, 1);
        return MPSCQ_FULL;
    }
    *admit = a;
    return MPSCQ_OK;
}

void mpscq_reject_count(struct mpscq *q, struct mpscq_hp_rec *r, uint64_t t, uint64_t n)
{
    MPSCQ_RMW(1);
    /* seq_cst: release pairs with the acquire load in mpscq_admit, so a
     * producer that counts these tickets issued its own after them; and
     * it is the Dekker half of the check below against a waiter's arm
     * (design.md s. 6.3). */
    atomic_fetch_add_explicit(&q->rejected, n, memory_order_seq_cst);
    r->seen = t + n;
    MPSCQ_STAT_ADD(q, st_full, 1);
    /* Counting a refusal makes room (admit grows by n): a producer waiting
     * in mpscq_enqueue_wait may get in now, and no dequeue may come to
     * wake it (the queue may be empty).  Either its look after arming saw
     * our count, or this load sees its arm: both sides are seq_cst. */
    if (MPSCQ_UNLIKELY(atomic_load_explicit(&q->space_armed, memory_order_seq_cst)))
        mpscq_space_wake_producer(q);
}
