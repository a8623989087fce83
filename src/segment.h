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

/* Free a segment outright (destroy, or one that was never published). */
MPSCQ_HIDDEN void mpscq_seg_free(struct mpscq *q, struct mpscq_segment *s);

/* Free every pooled segment (destroy only: no concurrent access). */
MPSCQ_HIDDEN void mpscq_seg_pool_drain(struct mpscq *q);

#endif /* MPSCQ_SEGMENT_H */
