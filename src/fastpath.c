/*
 * fastpath.c - C11 twins of the enqueue and dequeue fast paths.
 *
 * These are the routines an assembly build replaces (arch.h binds the
 * names at build time).  Everything that is not the common case is left
 * to queue.c: the fast paths touch one segment and never allocate.
 */
#include "config.h"

#include "arch.h"
#include "hazard.h"
#include "wait.h"

int mpscq_fast_enqueue_base(struct mpscq *q, struct mpscq_hp_rec *r, void *msg,
                            uint64_t *ticket, struct mpscq_segment **start)
{
    /* 1. Protect every segment: a seq_cst XCHG is the store and the full
     *    fence of the hazard-pointer publish in one LOCK'ed instruction.
     *    From here until the narrowing store the consumer recycles nothing. */
    atomic_exchange_explicit(&r->hp, MPSCQ_HP_ALL, memory_order_seq_cst);
    MPSCQ_RMW(1);
    /* 2. Acquire: the segment's id and link were written before the
     *    release CAS that made it reachable. */
    struct mpscq_segment *s = atomic_load_explicit(&q->hint, memory_order_acquire);
    /* 3. Narrow the hazard to s (and, by oldest-first recycling, every
     *    later segment).  Release is enough: ALL already protects s, and
     *    the scan sees either value. */
    atomic_store_explicit(&r->hp, s, memory_order_release);
    MPSCQ_TEST_HOOK(MPSCQ_HOOK_BEFORE_TICKET, q, 0);
    /* 4. The ticket.  seq_cst (LOCK XADD).  Read after the hint, so the
     *    ticket's segment is s or a later one. */
    uint64_t t = atomic_fetch_add_explicit(&q->tail, 1, memory_order_seq_cst);
    MPSCQ_RMW(1);
    MPSCQ_TEST_HOOK(MPSCQ_HOOK_AFTER_TICKET, q, t);
    if (MPSCQ_UNLIKELY(t & MPSCQ_TAIL_CLOSED)) {
        atomic_store_explicit(&r->hp, NULL, memory_order_release);
        return MPSCQ_CLOSED;
    }
    if (MPSCQ_UNLIKELY((t >> q->shift) != s->id)) {
        *ticket = t;
        *start = s;
        return MPSCQ_SLOW;
    }
    size_t i = (size_t)(t & q->mask);
    _Atomic unsigned char *st = mpscq_seg_state(s, q->nslots);
    mpscq_seg_vals(s)[i] = msg;
    /* 5. Release: the value (and everything the caller wrote before) is
     *    visible to the consumer's acquire load of the state. */
    MPSCQ_HB_BEFORE(&st[i]);
    atomic_store_explicit(&st[i], MPSCQ_SLOT_READY, memory_order_release);
    /* 6. Release: our reads of s are done before the consumer may see the
     *    hazard gone and recycle it. */
    atomic_store_explicit(&r->hp, NULL, memory_order_release);
    mpscq_notify(q);
    return MPSCQ_OK;
}

int mpscq_fast_dequeue_base(struct mpscq *q, void **msg)
{
    if (MPSCQ_UNLIKELY(q->npend != 0))
        return MPSCQ_SLOW;
    struct mpscq_segment *s = q->scan_seg;
    uint64_t idx = q->scan;
    if (MPSCQ_UNLIKELY((idx >> q->shift) != s->id))
        return MPSCQ_SLOW;
    size_t i = (size_t)(idx & q->mask);
    _Atomic unsigned char *st = mpscq_seg_state(s, q->nslots);
    /* Acquire: pairs with the producer's release store of the state. */
    unsigned v = atomic_load_explicit(&st[i], memory_order_acquire);
    if (!(v & MPSCQ_SLOT_READY))
        return MPSCQ_SLOW;
    MPSCQ_HB_AFTER(&st[i]);
    *msg = mpscq_seg_vals(s)[i];
    /* Nothing is pending, so every ticket below idx is handled: a slot
     * marked FOLLOWS here is the continuation of the batch taken last. */
    q->scan = q->head = idx + 1;
    q->last = idx;
    q->last_cont = (int)(v & MPSCQ_SLOT_CONT);
    /* Relaxed: only the consumer writes it; readers want a count, not an
     * ordering. */
    atomic_store_explicit(&q->dequeued,
                          atomic_load_explicit(&q->dequeued, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    return MPSCQ_OK;
}
