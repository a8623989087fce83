/*
 * wait.h - parking the consumer in the kernel and waking it.
 *
 * Protocol (doc/design.md, "Sleeping consumer"): the consumer stores
 * parked = 1, makes that store and every producer's earlier slot writes
 * mutually visible (membarrier, or producer-side fences where membarrier
 * is missing), looks for work once more, then sleeps on the futex.  A
 * producer, after writing its slot, reads `parked` and only if it is set
 * pays an XCHG and a FUTEX_WAKE.
 */
#ifndef MPSCQ_WAIT_H
#define MPSCQ_WAIT_H

#include <time.h>
#include "internal.h"

/* 1 when membarrier(PRIVATE_EXPEDITED) is registered for this process. */
MPSCQ_HIDDEN int mpscq_wait_init(void);
/* The consumer's side of the Dekker pair, after storing parked = 1. */
MPSCQ_HIDDEN void mpscq_wait_barrier(const struct mpscq *q);
/* 1 when the wait timed out (0: woken, or *addr != val at once). */
MPSCQ_HIDDEN int mpscq_futex_wait(_Atomic int *addr, int val, const struct timespec *rel);
MPSCQ_HIDDEN void mpscq_futex_wake(_Atomic int *addr);
MPSCQ_HIDDEN void mpscq_futex_wake_all(_Atomic int *addr);
/* Futexes in memory shared between processes (mpscq_ring: not _PRIVATE).
 * mpscq_futex_wait_shared: MPSCQ_TIMEOUT when deadline (mpscq_mono_ns
 * time, UINT64_MAX none) has passed, without waiting; otherwise waits
 * while *addr == val, at most until deadline, and returns MPSCQ_OK however
 * the wait ended (woken, the value moved, a signal, its time up): the
 * caller looks again.  mpscq_futex_wake_shared_all keeps errno. */
MPSCQ_HIDDEN int mpscq_futex_wait_shared(_Atomic uint32_t *addr, uint32_t val, uint64_t deadline);
MPSCQ_HIDDEN void mpscq_futex_wake_shared_all(_Atomic uint32_t *addr);
/* The adaptive spin of a waiting consumer (design.md s. 7): spins of
 * 16, 32, ... ns within *budget_ns and the timeout, take(ctx, msg) after
 * each; the budget doubles when one found a message and halves when none
 * did.  The first status that is not MPSCQ_EMPTY, or MPSCQ_EMPTY. */
MPSCQ_HIDDEN int mpscq_wait_spin(unsigned *budget_ns, long long timeout_ns,
                                 int (*take)(void *ctx, void **msg), void *ctx, void **msg);
/* A thread's first nap lowers its timer slack to 1 us, once (wait.c). */
MPSCQ_HIDDEN void mpscq_lower_timer_slack(void);
/* CLOCK_MONOTONIC in nanoseconds. */
MPSCQ_HIDDEN uint64_t mpscq_mono_ns(void);
/* The deadline of a call's timeout_ns from now: UINT64_MAX for < 0 (and
 * for anything that would pass it: LLONG_MAX is practically forever,
 * never an overflow into an immediate timeout). */
MPSCQ_HIDDEN uint64_t mpscq_deadline(long long timeout_ns);
/* mpscq_close's: wake every producer waiting in mpscq_enqueue_wait. */
MPSCQ_HIDDEN void mpscq_space_wake_close(struct mpscq *q);
MPSCQ_HIDDEN void mpscq_wake_consumer(struct mpscq *q);
/* mpscq_close's: marks parked MPSCQ_PARKED_CLOSE and wakes the consumer,
 * napping (parked 0) or asleep (1). */
MPSCQ_HIDDEN void mpscq_wake_consumer_close(struct mpscq *q);

/* Producer side, after its slot write. */
static inline void mpscq_notify(struct mpscq *q)
{
    if (MPSCQ_UNLIKELY(q->need_fence))
        atomic_thread_fence(memory_order_seq_cst); /* StoreLoad: slot write before parked read */
    else
        atomic_signal_fence(memory_order_seq_cst); /* compiler order only; the consumer's
                                                       membarrier supplies the hardware fence */
    /* Relaxed: the ordering is provided by the fences above. */
    if (MPSCQ_UNLIKELY(atomic_load_explicit(&q->parked, memory_order_relaxed)))
        mpscq_wake_consumer(q);
}

#endif /* MPSCQ_WAIT_H */
