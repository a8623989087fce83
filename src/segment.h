/*
 * segment.h - segment allocation and the ABA-safe pool of drained ones.
 */
#ifndef MPSCQ_SEGMENT_H
#define MPSCQ_SEGMENT_H

#include "internal.h"
#include "hazard.h"

/* The pool's three bounds (design.md s. 5).  The idle bound,
 * MPSCQ_POOL_MAX: drained segments kept once the consumer finds the queue
 * idle (two empty dequeues in a row with no ticket issued in between);
 * beyond it they go back to free_fn (or munmap).  The caught-up bound,
 * q->pool_high (MPSCQ_POOL_HIGH_BYTES worth, 4 to 1024 segments): what an
 * empty dequeue that finds the queue caught up but not idle eases the
 * pool back to, MPSCQ_POOL_EASE segments at most per call.  The working
 * bound, q->pool_work (MPSCQ_POOL_WORK_BYTES worth, 4 to 8192 segments):
 * what the pool takes while the consumer works through a backlog, so
 * that the frees of a drained backlog are paid when the consumer has
 * nothing else to do. */
#define MPSCQ_POOL_MAX 4
#define MPSCQ_POOL_HIGH_BYTES ((size_t)8 << 20)
#define MPSCQ_POOL_WORK_BYTES ((size_t)64 << 20)
#define MPSCQ_POOL_EASE 2

/* A segment with every slot empty and next == NULL: from the pool (at most
 * two attempts, protected by r's hazard pointer) or fresh from alloc_fn.
 * NULL when both fail.  Its id is set by whoever links it.  *pooled (if
 * not NULL) says where it came from: a pooled segment may still be named
 * by a stale popper's hazard, so only mpscq_seg_give_back may return it;
 * a fresh one that was never published may go to mpscq_seg_free. */
MPSCQ_HIDDEN struct mpscq_segment *mpscq_seg_get(struct mpscq *q,
                                                 struct mpscq_hp_rec *r, int *pooled);

/* From the pool only (as mpscq_seg_get, never the allocator); NULL when
 * the pool is empty or both attempts lost a race. */
MPSCQ_HIDDEN struct mpscq_segment *mpscq_seg_pop(struct mpscq *q, struct mpscq_hp_rec *r);

/* The consumer recycles a segment that its hazard scan found unprotected
 * (design.md s. 4): clear it and push it on the pool, or free it when the
 * pool holds mpscq_pool_work.  Consumer only. */
MPSCQ_HIDDEN void mpscq_seg_put(struct mpscq *q, struct mpscq_segment *s);

/* Any thread returns a segment that it owns privately (a spare): push it
 * on the pool, never free it, whatever the pool holds.  Only the consumer
 * frees pooled segments, after a hazard scan (mpscq_seg_pool_trim), which
 * is what keeps a stale popper from reading freed memory (design.md s. 5).
 * At most `tries` CAS attempts (0: lock-free retry until it works); 0 when
 * it gave up, and s is still the caller's.  Calls no user callback. */
MPSCQ_HIDDEN int mpscq_seg_give_back(struct mpscq *q, struct mpscq_segment *s, unsigned tries);

/* The consumer frees what the pool holds beyond `keep` segments
 * (mpscq_pool_keep when it finds the queue idle; mpscq_pool_high, a few
 * at a time, when it finds it caught up), each segment after a
 * hazard scan; a protected one goes back and the trim stops until the
 * next call.  Consumer only; cheap when nothing is over. */
MPSCQ_HIDDEN void mpscq_seg_pool_trim(struct mpscq *q, long keep);

/* As mpscq_seg_pool_trim, freeing at most `most` segments. */
MPSCQ_HIDDEN void mpscq_seg_pool_trim_most(struct mpscq *q, long keep, long most);

/* Segment memory: with the default allocator, straight from mmap (so a
 * drained burst goes back to the system, whatever malloc keeps), else
 * from the configured alloc_fn/free_fn.  Zero-filled or not: callers
 * clear what they use.  mpscq_seg_mem_setup picks at create. */
MPSCQ_HIDDEN void mpscq_seg_mem_setup(struct mpscq *q, int custom_allocator);
MPSCQ_HIDDEN void *mpscq_seg_mem_alloc(const struct mpscq *q);
MPSCQ_HIDDEN void mpscq_seg_mem_free(const struct mpscq *q, void *s);

/* The pool's bound once the consumer has caught up, and what it keeps
 * when the queue is idle: pool_high and MPSCQ_POOL_MAX, or, in a
 * preallocated queue, at least every segment preallocated (pool_keep). */
static inline long mpscq_pool_keep(struct mpscq *q)
{
    /* Relaxed: grows only at create and mpscq_producer_create; a count. */
    return atomic_load_explicit(&q->pool_keep, memory_order_relaxed);
}
static inline long mpscq_pool_at_least_keep(struct mpscq *q, long n)
{
    long keep = mpscq_pool_keep(q);
    return keep > n ? keep : n;
}
static inline long mpscq_pool_high(struct mpscq *q)
{
    return mpscq_pool_at_least_keep(q, q->pool_high);
}
/* What the pool takes while the consumer works through a backlog:
 * pool_work, or every segment preallocated. */
static inline long mpscq_pool_work(struct mpscq *q)
{
    return mpscq_pool_at_least_keep(q, q->pool_work);
}

/* Preallocation (mpscq_config.preallocate): n fresh segments into the
 * pool, which keeps them for good.  MPSCQ_NOMEM (nothing kept) or
 * MPSCQ_OK. */
MPSCQ_HIDDEN int mpscq_seg_prealloc(struct mpscq *q, long n);

/* A segment fresh from the allocator made ready for use: its header and
 * state bytes cleared, its atomics declared to Helgrind, counted in the
 * stats.  Private to the caller. */
MPSCQ_HIDDEN void mpscq_seg_prepare(struct mpscq *q, struct mpscq_segment *s);

/* Free a segment outright (destroy, or one that was never published). */
MPSCQ_HIDDEN void mpscq_seg_free(struct mpscq *q, struct mpscq_segment *s);

/* Free every pooled segment (destroy only: no concurrent access). */
MPSCQ_HIDDEN void mpscq_seg_pool_drain(struct mpscq *q);

/* The consumer recycles drained list segments, oldest first, stopping at
 * the first one a hazard pointer names (design.md s. 4).  Consumer only. */
MPSCQ_HIDDEN void mpscq_seg_reclaim(struct mpscq *q);
/* One step of it: recycle q->oldest, which the caller knows is drained
 * and linked to a successor, unless a hazard names it (0).  Whoever
 * recycles (the consumer, or in many-consumer mode the holder of
 * q->reclaiming) only. */
MPSCQ_HIDDEN int mpscq_seg_recycle_oldest(struct mpscq *q);

/* 1 when the oldest list segment is drained (all its tickets below
 * head) and not the one the consumer scans: mpscq_seg_reclaim has work. */
static inline int mpscq_seg_reclaimable(const struct mpscq *q)
{
    return q->oldest->id < (q->head >> q->shift) && q->oldest != q->scan_seg;
}

static inline void mpscq_seg_maybe_reclaim(struct mpscq *q)
{
    if (mpscq_seg_reclaimable(q))
        mpscq_seg_reclaim(q);
}

/* An empty dequeue that is not idle: the pool eases towards its
 * caught-up bound, MPSCQ_POOL_EASE segments at most per call, so that no call pays
 * for a whole drained backlog.  Consumer only (in the many-consumer mode,
 * the recycler's flag holder).  Relaxed: a hint; the trim decides. */
static inline void mpscq_seg_pool_ease(struct mpscq *q)
{
    if (atomic_load_explicit(&q->pool_count, memory_order_relaxed) > mpscq_pool_high(q))
        mpscq_seg_pool_trim_most(q, mpscq_pool_high(q), MPSCQ_POOL_EASE);
}

#endif /* MPSCQ_SEGMENT_H */
