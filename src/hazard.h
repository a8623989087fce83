/*
 * hazard.h - hazard-pointer records: one per (thread, queue), registered
 * on a thread's first enqueue, released at thread exit.
 *
 * A record's `hp` holds NULL (nothing protected), MPSCQ_HP_ALL (every
 * segment: published before reading the list's entry point), or a
 * segment pointer, which protects that segment *and every later one*,
 * because the consumer recycles segments strictly oldest first and stops
 * at the first protected one (doc/design.md, "Reclamation").
 */
#ifndef MPSCQ_HAZARD_H
#define MPSCQ_HAZARD_H

#include "internal.h"

#define MPSCQ_HP_ALL ((void *)1)
#define MPSCQ_HP_LINKING ((struct mpscq_hp_rec *)1)

struct mpscq_hp_rec {
    _Atomic(void *) hp;           /* read by the consumer's scan */
    _Atomic int active;           /* owned by a live thread */
    /* The next (older) record; MPSCQ_HP_LINKING for the instant between a
     * new record's XCHG onto the list and the store of its link. */
    _Atomic(struct mpscq_hp_rec *) next;
    struct mpscq_segment *spare;  /* owner-private segments, linked by pool_next */
    size_t nspare;
} __attribute__((aligned(MPSCQ_CACHELINE)));

struct mpscq_tls_ent {
    const struct mpscq *q;
    uint64_t qid;
    struct mpscq_hp_rec *rec;
};

#define MPSCQ_TLS_ENTRIES 8
extern _Thread_local struct mpscq_tls_ent mpscq_tls[MPSCQ_TLS_ENTRIES] MPSCQ_HIDDEN;

MPSCQ_HIDDEN struct mpscq_hp_rec *mpscq_hp_acquire_slow(struct mpscq *q);

/* The calling thread's record for q; NULL only when registering it failed
 * to allocate.  The common case is two compares against a thread-local. */
static inline struct mpscq_hp_rec *mpscq_hp_acquire(struct mpscq *q)
{
    if (MPSCQ_LIKELY(mpscq_tls[0].q == q && mpscq_tls[0].qid == q->qid))
        return mpscq_tls[0].rec;
    return mpscq_hp_acquire_slow(q);
}

/* 1 when some record names seg or MPSCQ_HP_ALL.  The caller (the consumer)
 * has unlinked seg from every shared entry point and issued a seq_cst
 * fence before calling. */
MPSCQ_HIDDEN int mpscq_hp_protected(const struct mpscq *q, const void *seg);

/* Live-queue registry, so that a thread exiting after mpscq_destroy does
 * not touch the freed queue's records. */
MPSCQ_HIDDEN void mpscq_hp_register_queue(struct mpscq *q);
MPSCQ_HIDDEN void mpscq_hp_unregister_queue(struct mpscq *q);

/* Free every record (and its spares) of a queue being destroyed. */
MPSCQ_HIDDEN void mpscq_hp_free_all(struct mpscq *q);

#endif /* MPSCQ_HAZARD_H */
