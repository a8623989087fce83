/*
 * consumer.h - who is the consumer: MPSCQ_BUSY for a second thread
 * (doc/design.md s. 8.1).
 *
 * Every thread has a *mark* (struct mpscq_consumer_mark) that only it
 * writes: the queue it is inside a consumer call of, or NULL.  A queue
 * names its consumer's mark in q->consumer, which only a *taker* (a thread
 * becoming the consumer) writes.  A consumer call stores its mark, then
 * checks that the queue names it: two plain stores and a load, no locked
 * instruction.  A taker names itself, makes both sides' accesses mutually
 * visible (membarrier, or fences on both sides), and then reads the old
 * consumer's mark: either it sees that consumer inside a call (it puts the
 * name back and returns MPSCQ_BUSY) or that consumer's check sees the new
 * name (and it returns MPSCQ_BUSY).  Marks live as long as the process
 * (one per thread slot, hazard.h), so a taker never reads freed memory.
 */
#ifndef MPSCQ_CONSUMER_H
#define MPSCQ_CONSUMER_H

#include "internal.h"
#include "arch.h"
#include "hazard.h"

struct mpscq_consumer_mark {
    /* The queue this thread is inside a consumer call of.  Written by its
     * thread only; read by takers. */
    _Atomic(const struct mpscq *) in;
} __attribute__((aligned(MPSCQ_CACHELINE)));

/* The mark of a thread that has none yet: shared, never named by a queue,
 * so its first consumer call goes to mpscq_consumer_enter_slow. */
extern struct mpscq_consumer_mark mpscq_mark_none MPSCQ_HIDDEN;
/* The mark of a thread running a user callback (alloc_fn, free_fn,
 * log_fn) from inside a consumer call: never named either, and its
 * consumer calls are BUSY (a thread has one mark: a nested call would
 * pass the check on the same queue, or clear the outer call's mark on
 * another). */
extern struct mpscq_consumer_mark mpscq_mark_nested MPSCQ_HIDDEN;

/* Around a user callback: a thread inside a consumer call takes the
 * nested mark until it returns.  Slow paths only. */
static inline struct mpscq_consumer_mark *mpscq_callback_begin(void)
{
    struct mpscq_consumer_mark *m = mpscq_tls.mark;
    /* Relaxed: the thread's own store (the dummy's is garbage, hence the
     * first test). */
    if (m != &mpscq_mark_none && atomic_load_explicit(&m->in, memory_order_relaxed))
        mpscq_tls.mark = &mpscq_mark_nested;
    return m;
}
static inline void mpscq_callback_end(struct mpscq_consumer_mark *m)
{
    mpscq_tls.mark = m;
}

/* A queue without membarrier names its consumer with this bit set, so the
 * fast check always fails and the slow one adds the fence it needs. */
#define MPSCQ_CONSUMER_FENCED ((uintptr_t)1)

/* The checks that are not the common case: a first call, a new consumer
 * thread, a queue without membarrier.  MPSCQ_OK: inside (the mark is set);
 * MPSCQ_BUSY: another thread is (our mark is cleared, nothing changed);
 * MPSCQ_NOMEM: no mark could be had for this thread. */
MPSCQ_HIDDEN int mpscq_consumer_enter_slow(struct mpscq *q);

/* Enter a consumer call of q. */
static inline int mpscq_consumer_enter(struct mpscq *q)
{
    struct mpscq_consumer_mark *self = mpscq_tls.mark;
    /* The taker's membarrier (or, fenced, the fences of both sides)
     * orders this store before the load below (design.md s. 8.1).
     * Release, which is a plain store on x86: a taker that reads it
     * (acquire) synchronizes with it even when it follows this thread's
     * last exit (C11's release sequences no longer cover a later relaxed
     * store by the same thread since C++20/P0982). */
    atomic_store_explicit(&self->in, q, memory_order_release);
    /* Keeps the compiler from moving the load above the store. */
    atomic_signal_fence(memory_order_seq_cst);
    MPSCQ_TEST_HOOK(MPSCQ_HOOK_CONSUMER_ENTER, q, 0);
    /* Relaxed: as the store. */
    if (MPSCQ_LIKELY(atomic_load_explicit(&q->consumer, memory_order_relaxed) == self))
        return MPSCQ_OK;
    return mpscq_consumer_enter_slow(q);
}

/* Leave it: the mark says nothing. */
static inline void mpscq_consumer_leave(struct mpscq_consumer_mark *self)
{
    MPSCQ_HB_BEFORE(&self->in);
    /* Release: a taker that reads NULL (acquire) takes the consumer's
     * state as this call left it. */
    atomic_store_explicit(&self->in, NULL, memory_order_release);
}

static inline void mpscq_consumer_exit(void)
{
    mpscq_consumer_leave(mpscq_tls.mark);
}

/* A dequeue inside a consumer call already (the batch and waiting calls,
 * destroy): the fast path without the entry's check. */
#define mpscq_dequeue_in(q, msg) mpscq_fast_dequeue((q), (msg))
/* 1 when a dequeue by q's consumer would find nothing and have nothing
 * to do, t being a load of q->tail (dequeue.c): queue sets look at idle
 * members with it. */
MPSCQ_HIDDEN int mpscq_dequeue_idle(struct mpscq *q, uint64_t t);

/* mpscq_dequeue_batch's work, inside a consumer call (dequeue.c). */
MPSCQ_HIDDEN size_t mpscq_dequeue_batch_in(struct mpscq *q, void **msgs, size_t max);

/* The consumer calls' continuations that leave the call too (the
 * mpscq_dequeue entries tail-call them; dequeue.c). */
MPSCQ_HIDDEN int mpscq_dequeue_slow_out(struct mpscq *q, void **msg);
MPSCQ_HIDDEN int mpscq_dequeue_crossed_out(struct mpscq *q);
/* mpscq_dequeue when the entry's check failed: enter slowly, then the
 * whole dequeue, then leave. */
MPSCQ_HIDDEN int mpscq_dequeue_enter(struct mpscq *q, void **msg);

#endif /* MPSCQ_CONSUMER_H */
