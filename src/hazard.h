/*
 * hazard.h - hazard-pointer records: one per (thread slot, queue).
 *
 * A record's `hp` holds NULL (nothing protected), MPSCQ_HP_ALL (every
 * segment: published before reading the list's entry point), or a
 * segment pointer, which protects that segment *and every later one*,
 * because the consumer recycles segments strictly oldest first and stops
 * at the first protected one (doc/design.md, "Reclamation").  A pool
 * popper names the pool's top segment the same way (design.md s. 5).
 *
 * Finding the calling thread's record never takes a lock and never evicts
 * anything (design.md s. 4, "Records"): every thread owns a small
 * integer, its *slot*, claimed from a process-wide bitmap on its first
 * enqueue and given back at thread exit; each queue keeps a two-level
 * directory from slot to record.  A record outlives its thread: the next
 * thread to own the slot inherits it (and its spare segments).  A
 * one-entry thread-local cache in front makes the common case two
 * compares.
 */
#ifndef MPSCQ_HAZARD_H
#define MPSCQ_HAZARD_H

#include "internal.h"

#define MPSCQ_HP_ALL ((void *)1)
#define MPSCQ_HP_LINKING ((struct mpscq_hp_rec *)1)

struct mpscq_hp_rec {
    _Atomic(void *) hp;           /* read by the consumer's scan */
    /* The next (older) record; MPSCQ_HP_LINKING for the instant between a
     * new record's XCHG onto the list and the store of its link. */
    _Atomic(struct mpscq_hp_rec *) next;
    /* Owner-private: segments linked by pool_next.  Only the thread that
     * owns the record's slot touches them (thread exit hands them to the
     * pool under the registry lock, before the slot is given back). */
    struct mpscq_segment *spare;
    /* Owner-private, bounded queues: tickets known to be issued (the end
     * of this record's last refused ticket range), a lower bound of tail
     * for the FULL check that takes no ticket (capacity.c). */
    uint64_t seen;
    /* MPSCQ_REC_SLOT: a thread slot's record (hazard.c's directory);
     * else a producer handle's: MPSCQ_REC_HANDLE_BUSY while a handle
     * holds it, MPSCQ_REC_HANDLE_FREE for the next mpscq_producer_create. */
    _Atomic int kind;
    /* How many spares (owner-private, beside kind: 32 bits, so that the
     * record stays one cache line). */
    uint32_t nspare;
    /* Many-consumer mode: the segment this thread's dequeue reads from
     * (and every later one), or NULL; read by the recycler's scan
     * (consumers.c). */
    _Atomic(void *) hpc;
    /* Many-consumer mode, unbounded: this thread's dequeues, written by
     * its owner only (relaxed load and store), summed by mpscq_stats and
     * mpscq_size (mpscq_hp_sum_dequeued). */
    _Atomic uint64_t cdeq;
    /* Many-consumer mode, owner-private: tickets below climit are issued
     * (this thread's last load of tail, consumers.c); MPSCQ_TAIL_CLOSED
     * set: it is the close ticket. */
    uint64_t climit;
} __attribute__((aligned(MPSCQ_CACHELINE)));
_Static_assert(sizeof(struct mpscq_hp_rec) == MPSCQ_CACHELINE, "a record is one cache line");

enum { MPSCQ_REC_SLOT, MPSCQ_REC_HANDLE_BUSY, MPSCQ_REC_HANDLE_FREE };

/* Thread slots: at most MPSCQ_MAX_THREADS threads hold one at once; a
 * thread beyond that gets MPSCQ_NOMEM from its first enqueue. */
#define MPSCQ_DIR_LEAF_BITS 8
#define MPSCQ_DIR_LEAF      (1u << MPSCQ_DIR_LEAF_BITS)
#define MPSCQ_MAX_THREADS   (MPSCQ_DIR_TOP * MPSCQ_DIR_LEAF)

struct mpscq_hp_leaf {
    _Atomic(struct mpscq_hp_rec *) rec[MPSCQ_DIR_LEAF];
};

/* The one-entry cache: the queue this thread enqueued on last.
 * Initial-exec TLS: one load from the GOT, and valid in position-
 * independent code, so that libmpscq.a also links into a shared object
 * (the static TLS block such an object then needs is 40 bytes). */
struct mpscq_consumer_mark;
struct mpscq_tls_ent {
    const struct mpscq *q;
    uint64_t qid;
    struct mpscq_hp_rec *rec;
    /* This thread's consumer mark (consumer.h); &mpscq_mark_none until
     * its first consumer call. */
    struct mpscq_consumer_mark *mark;
};
extern _Thread_local struct mpscq_tls_ent mpscq_tls MPSCQ_HIDDEN MPSCQ_TLS_MODEL;
/* mpscq_tls's offset from the thread pointer, the same in every thread
 * (static TLS), for the NASM enqueue entry: NASM cannot emit a TLS
 * reference that GNU ld accepts, so it reads %fs:mpscq_tls_tpoff.  Set
 * when the library is loaded (hazard.c). */
extern long mpscq_tls_tpoff MPSCQ_HIDDEN;

/* The calling thread's slot plus one, claiming one if it has none; 0 when
 * every slot is taken. */
MPSCQ_HIDDEN unsigned mpscq_hp_thread_slot(void);

/* The calling thread's record for q, registering it on first use; NULL
 * only when that needed memory (or a thread slot) it could not get. */
MPSCQ_HIDDEN struct mpscq_hp_rec *mpscq_hp_acquire_slow(struct mpscq *q);

static inline struct mpscq_hp_rec *mpscq_hp_acquire(struct mpscq *q)
{
    if (MPSCQ_LIKELY(mpscq_tls.q == q && mpscq_tls.qid == q->qid))
        return mpscq_tls.rec;
    return mpscq_hp_acquire_slow(q);
}

/* A record of its own for a producer handle (mpscq_producer_create): a
 * free handle record of q, or a new one.  NULL when out of memory.
 * Wait-free: one CAS per record tried, at most one XCHG. */
MPSCQ_HIDDEN struct mpscq_hp_rec *mpscq_hp_acquire_handle(struct mpscq *q);
/* Give it back (mpscq_producer_destroy): its spares to the pool, then
 * free for the next handle. */
MPSCQ_HIDDEN void mpscq_hp_release_handle(struct mpscq *q, struct mpscq_hp_rec *r);

/* 1 when some record names seg or (all_counts) MPSCQ_HP_ALL.  The caller
 * has made seg unreachable from every shared entry point and issued a
 * seq_cst fence before calling.  MPSCQ_HP_ALL protects list segments
 * only (a pool popper names its top itself), so the pool's trim passes
 * all_counts = 0. */
MPSCQ_HIDDEN int mpscq_hp_protected(const struct mpscq *q, const void *seg, int all_counts);

/* The sum of the slot records' cdeq, read from the directory (many-consumer
 * mode, unbounded): successive sums of one thread never go back. */
MPSCQ_HIDDEN uint64_t mpscq_hp_sum_dequeued(const struct mpscq *q);

/* Live-queue registry, so that a thread exiting after mpscq_destroy does
 * not touch the freed queue's records.  Only create, destroy and thread
 * exit take its lock; no user callback runs under it. */
MPSCQ_HIDDEN void mpscq_hp_register_queue(struct mpscq *q);
MPSCQ_HIDDEN void mpscq_hp_unregister_queue(struct mpscq *q);

/* Free every record (and its spares) and the directory of a queue being
 * destroyed. */
MPSCQ_HIDDEN void mpscq_hp_free_all(struct mpscq *q);

#endif /* MPSCQ_HAZARD_H */
