/*
 * segment.h - segment allocation and the ABA-safe pool of drained ones.
 */
#ifndef MPSCQ_SEGMENT_H
#define MPSCQ_SEGMENT_H

#include "internal.h"
#include "hazard.h"

/* Drained segments kept for reuse; beyond this they go back to free_fn. */
#define MPSCQ_POOL_MAX 4

/* A segment with every slot empty and next == NULL: from the pool (at most
 * two attempts, protected by r's hazard pointer) or fresh from alloc_fn.
 * NULL when both fail.  Its id is set by whoever links it. */
MPSCQ_HIDDEN struct mpscq_segment *mpscq_seg_get(struct mpscq *q,
                                                 struct mpscq_hp_rec *r);

/* Give back a segment that no thread can reach any more: clear it and
 * push it on the pool, or free it when the pool is full.  `consumer`
 * selects which side's contention warning a long CAS retry logs. */
MPSCQ_HIDDEN void mpscq_seg_put(struct mpscq *q, struct mpscq_segment *s,
                                int consumer);

/* Segment memory: with the default allocator, straight from mmap (so a
 * drained burst goes back to the system, whatever malloc keeps), else
 * from the configured alloc_fn/free_fn.  Zero-filled or not: callers
 * clear what they use.  mpscq_seg_mem_setup picks at create. */
MPSCQ_HIDDEN void mpscq_seg_mem_setup(struct mpscq *q, int custom_allocator);
MPSCQ_HIDDEN void *mpscq_seg_mem_alloc(const struct mpscq *q);
MPSCQ_HIDDEN void mpscq_seg_mem_free(const struct mpscq *q, void *s);

/* Free a segment outright (destroy, or one that was never published). */
MPSCQ_HIDDEN void mpscq_seg_free(struct mpscq *q, struct mpscq_segment *s);

/* Free every pooled segment (destroy only: no concurrent access). */
MPSCQ_HIDDEN void mpscq_seg_pool_drain(struct mpscq *q);

#endif /* MPSCQ_SEGMENT_H */
