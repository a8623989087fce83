/*
 * consumer.c - who is the consumer: the slow half of the check that makes
 * a second consumer thread get MPSCQ_BUSY (consumer.h, design.md s. 8.1).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "consumer.h"
#include "consumers.h"
#include "wait.h"

struct mpscq_consumer_mark mpscq_mark_none;
struct mpscq_consumer_mark mpscq_mark_nested;
struct mpscq_consumer_mark mpscq_mark_many;

/* One mark per thread slot, for the life of the process: a slot's next
 * owner inherits it, and a taker may read the mark of a thread that has
 * exited.  The first leaf is static (no allocation for the first
 * MPSCQ_DIR_LEAF threads); the others are allocated once, by CAS. */
static struct mpscq_consumer_mark marks0[MPSCQ_DIR_LEAF];
static _Atomic(struct mpscq_consumer_mark *) mark_leaf[MPSCQ_DIR_TOP] = { marks0 };

static void __attribute__((constructor)) consumer_init(void)
{
    MPSCQ_HG_ATOMIC(marks0, sizeof marks0);
    MPSCQ_HG_ATOMIC(&mpscq_mark_none, sizeof mpscq_mark_none);
    MPSCQ_HG_ATOMIC(&mpscq_mark_nested, sizeof mpscq_mark_nested);
    MPSCQ_HG_ATOMIC(&mpscq_mark_many, sizeof mpscq_mark_many);
    MPSCQ_HG_ATOMIC(mark_leaf, sizeof mark_leaf);
}

/* The calling thread's mark: its slot's (claiming a slot first). */
static struct mpscq_consumer_mark *mark_claim(void)
{
    unsigned slot = mpscq_hp_thread_slot();
    if (!slot)
        return NULL;
    slot--;
    _Atomic(struct mpscq_consumer_mark *) *lp = &mark_leaf[slot >> MPSCQ_DIR_LEAF_BITS];
    /* Acquire: pairs with the release CAS that published the leaf. */
    struct mpscq_consumer_mark *leaf = atomic_load_explicit(lp, memory_order_acquire);
    if (!leaf) {
        void *p = NULL;
        size_t bytes = MPSCQ_DIR_LEAF * sizeof *leaf;
        if (posix_memalign(&p, MPSCQ_CACHELINE, bytes))
            return NULL;
        memset(p, 0, bytes);
        MPSCQ_HG_ATOMIC(p, bytes);
        struct mpscq_consumer_mark *none = NULL;
        MPSCQ_RMW(1);
        /* Release: the zeroed leaf before its pointer; acquire on failure:
         * the winner's leaf. */
        if (atomic_compare_exchange_strong_explicit(lp, &none, p, memory_order_acq_rel,
                                                    memory_order_acquire))
            leaf = p;
        else {
            free(p);
            leaf = none;
        }
    }
    return &leaf[slot & (MPSCQ_DIR_LEAF - 1)];
}

static struct mpscq_consumer_mark *untag(struct mpscq_consumer_mark *c)
{
    return (struct mpscq_consumer_mark *)((uintptr_t)c & ~MPSCQ_CONSUMER_FENCED);
}

int mpscq_consumer_enter_slow(struct mpscq *q)
{
    struct mpscq_consumer_mark *self = mpscq_tls.mark;
    if (MPSCQ_UNLIKELY(q->many)) {
        /* A single-consumer call on a many-consumer queue (mpscq_peek, a
         * set member): it names no consumer, and none may be named. */
        if (self != &mpscq_mark_none && self != &mpscq_mark_nested)
            /* Release: as mpscq_consumer_exit. */
            atomic_store_explicit(&self->in, NULL, memory_order_release);
        return MPSCQ_INVAL;
    }
    if (self == &mpscq_mark_nested) {
        /* A callback's consumer call, inside a consumer call. */
        MPSCQ_STAT_ADD(q, st_busy, 1);
        return MPSCQ_BUSY;
    }
    if (self == &mpscq_mark_none) {
        if (!(self = mark_claim())) {
            MPSCQ_STAT_ADD(q, st_nomem, 1);
            return MPSCQ_NOMEM;
        }
        mpscq_tls.mark = self;
        /* Release: as in mpscq_consumer_enter. */
        atomic_store_explicit(&self->in, q, memory_order_release);
    }
    /* A queue without membarrier: the consumer's half of the Dekker pair
     * is this fence, between its mark and its load of the name (the
     * taker's half is its fence below). */
    atomic_thread_fence(memory_order_seq_cst);
    /* Relaxed: ordered by the fence above. */
    struct mpscq_consumer_mark *c = atomic_load_explicit(&q->consumer, memory_order_relaxed);
    if (untag(c) == self)
        return MPSCQ_OK;
    /* The consumer is inside a call (or entering one): BUSY without the
     * flag and the barrier.  Acquire: pairs with its mark stores.  In a
     * program whose calls do not overlap its mark reads NULL here. */
    if (c && atomic_load_explicit(&untag(c)->in, memory_order_acquire) == q)
        goto busy;

    /* Become the consumer.  One taker at a time: a second one is a second
     * thread calling at once, so BUSY.  Acquire: the last taker's release
     * of the flag, and with it its name of the consumer. */
    MPSCQ_RMW(1);
    if (atomic_exchange_explicit(&q->taking, 1, memory_order_acquire))
        goto busy;
    MPSCQ_HB_AFTER(&q->taking);
    /* Relaxed: only takers write it, and we hold the flag. */
    c = atomic_load_explicit(&q->consumer, memory_order_relaxed);
    struct mpscq_consumer_mark *old = untag(c);
    if (old == self) {
        /* A taker that named itself while we checked put our name back.
         * Release: as the flag's other clearing stores (the next taker
         * reads the name after its acquire XCHG). */
        MPSCQ_HB_BEFORE(&q->taking);
        atomic_store_explicit(&q->taking, 0, memory_order_release);
        return MPSCQ_OK;
    }
    /* seq_cst: the taker's store of the Dekker pair. */
    atomic_store_explicit(&q->consumer,
                          (struct mpscq_consumer_mark *)((uintptr_t)self |
                                                         (q->need_fence ? MPSCQ_CONSUMER_FENCED : 0)),
                          memory_order_seq_cst);
    MPSCQ_TEST_HOOK(MPSCQ_HOOK_CONSUMER_TAKE, q, 0);
    if (old) {
        /* Every thread of the process runs a full barrier (membarrier), or
         * without it this fence meets the consumer's (above): the old
         * consumer's mark, if it stored one before its check, is visible
         * now; if it stores one after, its check sees our name. */
        mpscq_wait_barrier(q);
        /* Acquire: pairs with mpscq_consumer_exit's release. */
        if (atomic_load_explicit(&old->in, memory_order_acquire) == q) {
            /* Inside a call: it stays the consumer.  seq_cst, as the
             * store it undoes: the consumer's next check, and the next
             * taker (after the flag's release), read it. */
            atomic_store_explicit(&q->consumer, c, memory_order_seq_cst);
            MPSCQ_HB_BEFORE(&q->taking);
            atomic_store_explicit(&q->taking, 0, memory_order_release);
            goto busy;
        }
        MPSCQ_HB_AFTER(&old->in);
    }
    MPSCQ_HB_BEFORE(&q->taking);
    /* Release: the next taker sees our name. */
    atomic_store_explicit(&q->taking, 0, memory_order_release);
    return MPSCQ_OK;

busy:
    MPSCQ_STAT_ADD(q, st_busy, 1);
    /* Release: as mpscq_consumer_exit (nothing was changed). */
    atomic_store_explicit(&self->in, NULL, memory_order_release);
    return MPSCQ_BUSY;
}
