/*
 * consumers.h - the many-consumer mode's calls (consumers.c): the public
 * consumer calls of a queue created with mpscq_config.consumers =
 * MPSCQ_CONSUMERS_MANY come here.  Such a queue names no consumer
 * (q->consumer is mpscq_mark_many, which no thread has), so the entries'
 * consumer check fails and the single-consumer fast paths never run.
 */
#ifndef MPSCQ_CONSUMERS_H
#define MPSCQ_CONSUMERS_H

#include "internal.h"

/* Yielding to a hot consumer (consumers.c, design.md s. 16).  A
 * consumer is hot when its last MPSCQ_HOT_TAKES takes in a row came less
 * than MPSCQ_HOT_NS apart on average: about what moving a cache line
 * between two CPUs costs, above which two consumers gain more by taking
 * side by side than they lose to the lines they share.  Another
 * consumer's call looks at the hot word after a window of
 * MPSCQ_HOT_WINDOW0_NS, then of MPSCQ_HOT_WINDOW_NS, and yields
 * MPSCQ_HOT_WAIT_NS at most in all. */
#define MPSCQ_HOT_TAKES 64u
#define MPSCQ_HOT_NS 256u
#define MPSCQ_HOT_WINDOW0_NS 512u
#define MPSCQ_HOT_WINDOW_NS 1024u
#define MPSCQ_HOT_WAIT_NS 16384u

struct mpscq_consumer_mark;
/* The mark a many-consumer queue names: no thread's. */
extern struct mpscq_consumer_mark mpscq_mark_many MPSCQ_HIDDEN;

MPSCQ_HIDDEN int mpscq_many_dequeue(struct mpscq *q, void **msg);
MPSCQ_HIDDEN size_t mpscq_many_dequeue_batch(struct mpscq *q, void **msgs, size_t max);
MPSCQ_HIDDEN int mpscq_many_dequeue_wait(struct mpscq *q, void **msg, long long timeout_ns);
MPSCQ_HIDDEN int mpscq_many_dequeue_batch_wait(struct mpscq *q, void **msgs, size_t max,
                                               size_t *n, long long timeout_ns);
/* mpscq_destroy's: every message still queued to drop, in ticket order. */
MPSCQ_HIDDEN void mpscq_many_drain(struct mpscq *q, void (*drop)(void *, void *), void *arg);

#endif /* MPSCQ_CONSUMERS_H */
