/*
 * fastpath.c - C11 twins of the enqueue and dequeue fast paths.
 *
 * These are the routines an assembly build replaces (arch.h binds the
 * names at build time).  Everything that is not the common case is left
 * to enqueue.c and dequeue.c: the fast paths touch one segment and never
 * allocate.
 */
#include "config.h"

#include "arch.h"
#include "capacity.h"
#include "consumer.h"
#include "hazard.h"
#include "wait.h"

/* Steps 1-2 of every enqueue (design.md s. 2): protect, take n tickets.
 * One locked instruction: the ticket's. */
static inline uint64_t take_tickets(struct mpscq *q, struct mpscq_hp_rec *r, uint64_t n)
{
    /* 1. Protect every segment with a plain store (relaxed).  No fence of
     *    its own: the ticket's fetch-and-add below is one.  Until the
     *    narrowing store the consumer recycles nothing. */
    atomic_store_explicit(&r->hp, MPSCQ_HP_ALL, memory_order_relaxed);
    /* Keeps the compiler from folding this store into the narrowing one
     * (no instruction: the ticket's RMW orders it for the hardware). */
    atomic_signal_fence(memory_order_seq_cst);
    MPSCQ_TEST_HOOK(MPSCQ_HOOK_BEFORE_TICKET, q, 0);
#if !defined(__x86_64__) && !defined(__aarch64__)
    /* Elsewhere no hardware argument is made for the RMW below: an
     * explicit StoreLoad fence between the hazard and the hint. */
    atomic_thread_fence(memory_order_seq_cst);
#endif
    /* 2. The tickets.  seq_cst, and the StoreLoad edge of the hazard
     *    publish: the release half keeps the hazard store before it, the
     *    acquire half keeps the hint load after it, and the RMW is a full
     *    barrier on the hardware (LOCK XADD on x86-64; on AArch64 LDADDAL,
     *    or LDAXR/STLXR, followed by the LDAR below, which is ordered after
     *    the release).  C11 alone does not make an RMW a fence for other
     *    locations: design.md s. 4 gives the argument and its scope. */
    uint64_t t = atomic_fetch_add_explicit(&q->tail, n, memory_order_seq_cst);
    MPSCQ_RMW(1);
    MPSCQ_TEST_HOOK(MPSCQ_HOOK_AFTER_TICKET, q, t);
    return t;
}

/* Steps 3-4, for admitted tickets: read the hint, narrow the hazard to
 * it. */
static inline struct mpscq_segment *protect_hint(struct mpscq *q, struct mpscq_hp_rec *r,
                                                 uint64_t t)
{
    /* 3. seq_cst: after the ticket in the single total order, so that the
     *    consumer's hazard scan either sees our hazard or its unlink of a
     *    segment from the hint is seen here (design.md s. 4).  A plain MOV
     *    on x86, LDAR on AArch64.  It also reads the linker's id, base and
     *    prev (the hint is stored after the segment is linked). */
    struct mpscq_segment *s = atomic_load_explicit(&q->hint, memory_order_seq_cst);
    MPSCQ_HB_AFTER(&q->hint);
    /* 4. Narrow the hazard to s (and, by oldest-first recycling, every
     *    later segment).  Release is enough: ALL already protects s, and
     *    the scan sees either value.  The hint may be past our ticket's
     *    segment; that one and every later one are kept by the ticket
     *    itself, unhandled until we write it (design.md s. 4). */
    atomic_store_explicit(&r->hp, s, memory_order_release);
    MPSCQ_TEST_HOOK(MPSCQ_HOOK_AFTER_HINT, q, t);
    (void)t;
    return s;
}

int mpscq_fast_enqueue_base(struct mpscq *q, struct mpscq_hp_rec *r, void *msg,
                            uint64_t admit)
{
    uint64_t t = take_tickets(q, r, 1);
    /* Closed (bit 63 set: at or above any bound, MPSCQ_ADMIT_ALL when
     * unbounded), or (bounded) refused: not below the admission bound read
     * before the ticket (capacity.h).  The hazard still says ALL. */
    if (MPSCQ_UNLIKELY(t >= admit))
        return mpscq_enqueue_refused(q, r, t, 1);
    struct mpscq_segment *s = protect_hint(q, r, t);
    /* In the hinted segment when t - base < N (unsigned: a hint past the
     * ticket wraps around), and then t - base is the slot. */
    size_t i = (size_t)(t - s->base);
    if (MPSCQ_UNLIKELY(i >= q->nslots))
        return mpscq_enqueue_finish(q, r, msg, t, s);
    _Atomic unsigned char *st = mpscq_slot_state(s, i);
    *mpscq_slot_val(s, i) = msg;
    /* 5. Release: the value (and everything the caller wrote before) is
     *    visible to the consumer's acquire load of the state. */
    MPSCQ_HB_BEFORE(st);
    atomic_store_explicit(st, MPSCQ_SLOT_READY, memory_order_release);
    /* 6. Release: our reads of s are done before the consumer may see the
     *    hazard gone and recycle it. */
    MPSCQ_HB_BEFORE(&r->hp);
    atomic_store_explicit(&r->hp, NULL, memory_order_release);
    mpscq_notify(q);
    return MPSCQ_OK;
}

uint64_t mpscq_fast_reserve_base(struct mpscq *q, struct mpscq_hp_rec *r, uint64_t n,
                                 uint64_t admit, struct mpscq_segment **start)
{
    uint64_t t = take_tickets(q, r, n);
    if (MPSCQ_LIKELY(t + n <= admit))
        *start = protect_hint(q, r, t);
    return t;
}

/* The dequeue fast path.  self: NULL for the library's own calls (the
 * waiting and batch calls, destroy), which are inside a consumer call
 * already; the caller's mark for the mpscq_dequeue entry, which then
 * leaves the call on every way out (consumer.h). */
static MPSCQ_INLINE int fast_dequeue(struct mpscq *q, void **msg,
                                     struct mpscq_consumer_mark *self)
{
    if (MPSCQ_UNLIKELY(q->gate != 0)) /* runs passed, or a message peeked */
        return self ? mpscq_dequeue_slow_out(q, msg) : mpscq_dequeue_slow(q, msg);
    struct mpscq_segment *s = q->scan_seg;
    uint64_t idx = q->scan;
    /* scan in scan_seg: idx - base < N, and then it is the slot. */
    size_t i = (size_t)(idx - s->base);
    if (MPSCQ_UNLIKELY(i >= q->nslots))
        return self ? mpscq_dequeue_slow_out(q, msg) : mpscq_dequeue_slow(q, msg);
    _Atomic unsigned char *st = mpscq_slot_state(s, i);
    /* Acquire: pairs with the producer's release store of the state. */
    unsigned v = atomic_load_explicit(st, memory_order_acquire);
    if (!(v & MPSCQ_SLOT_READY))
        return self ? mpscq_dequeue_slow_out(q, msg) : mpscq_dequeue_slow(q, msg);
    MPSCQ_HB_AFTER(st);
    *msg = *mpscq_slot_val(s, i);
    /* Nothing is pending, so every ticket below idx is handled: a slot
     * marked FOLLOWS here is the continuation of the batch taken last. */
    q->scan = q->head = idx + 1;
    q->last = idx;
    q->last_cont = (int)(v & MPSCQ_SLOT_CONT);
    /* Release: a producer waiting for a place reads it with acquire and
     * admits against it (enqueue_wait.c); the relaxed load is of the
     * consumer's own store. */
    atomic_store_explicit(&q->dequeued,
                          atomic_load_explicit(&q->dequeued, memory_order_relaxed) + 1,
                          memory_order_release);
    int crossed = i + 1 == q->nslots;
    /* Bounded: one more dequeue, published in batches, and a waiting
     * producer woken (capacity.h: mpscq_release_one, written out so that
     * the wake-up is a tail call and the fast path keeps no frame). */
    if (q->capacity) {
        if (++q->release_debt >= q->release_batch)
            mpscq_release_flush(q);
        atomic_signal_fence(memory_order_seq_cst);
        /* Relaxed: the waiter's barrier supplies the ordering (capacity.h). */
        if (MPSCQ_UNLIKELY(atomic_load_explicit(&q->space_armed, memory_order_relaxed)))
            return mpscq_dequeue_woke(q, crossed, self != NULL);
    }
    if (MPSCQ_UNLIKELY(crossed))
        return self ? mpscq_dequeue_crossed_out(q) : mpscq_dequeue_crossed(q);
    if (self)
        mpscq_consumer_leave(self);
    return MPSCQ_OK;
}

int mpscq_fast_dequeue_base(struct mpscq *q, void **msg)
{
    return fast_dequeue(q, msg, NULL);
}

/* mpscq_dequeue, whole: the public call itself in a C build, the C twin
 * of the NASM entry (mpscq_dequeue_entry_x86_64) where entries are
 * dispatched. */
#ifdef MPSCQ_ENTRIES_DISPATCHED
#define MPSCQ_DEQUEUE_C mpscq_dequeue_entry_base
#else
#define MPSCQ_DEQUEUE_C mpscq_dequeue
#endif

int MPSCQ_DEQUEUE_C(mpscq_t *q, void **msg)
{
    if (MPSCQ_UNLIKELY(!q || !msg))
        return MPSCQ_INVAL;
    /* mpscq_consumer_enter, written out so that its slow half continues
     * into the whole dequeue (mpscq_dequeue_enter) by a tail call. */
    struct mpscq_consumer_mark *self = mpscq_tls.mark;
    /* Never NULL (&mpscq_mark_none at the least): the fast path's exits
     * then need no test of it. */
    if (!self)
        __builtin_unreachable();
    /* Release (a plain store on x86), then a compiler fence: consumer.h. */
    atomic_store_explicit(&self->in, q, memory_order_release);
    atomic_signal_fence(memory_order_seq_cst);
    MPSCQ_TEST_HOOK(MPSCQ_HOOK_CONSUMER_ENTER, q, 0);
    if (MPSCQ_UNLIKELY(atomic_load_explicit(&q->consumer, memory_order_relaxed) != self))
        return mpscq_dequeue_enter(q, msg);
    return fast_dequeue(q, msg, self);
}
