/*
 * peer_atomic_queue.cc - Maxim Egorushkin's atomic_queue (Debian's
 * libatomic-queue-dev): a bounded MPMC ring, here AtomicQueueB2<void *>
 * (element states beside the values, so any pointer, NULL included, is a
 * message).  A producer claims a slot by CAS on the head; the consumer's
 * try_pop then spins until that slot is stored, so a producer preempted
 * between claim and store stalls the consumer.  And it breaks
 * per-producer order: while the consumer waits at index k for that
 * producer, another producer may claim index k + size (the consumer has
 * already advanced the tail), find the slot still empty and store there;
 * the consumer takes that element as index k's (BENCH_UNORDERED: the
 * harness verifies every run and reports such runs FAILED).  Batches are n single pushes and pops: it has no bulk call.
 * An "unbounded" run gets a ring sized for every message (BENCH_PRESIZED).
 * Its ring is a power of two of at least 4096 places, so a bounded run
 * gives it more room than the capacity asked (BENCH_ROUNDED_CAPACITY:
 * the table says so; ratios against it are conservative for libmpscq).
 */
#include "config.h"
extern "C" {
#include "adapter.h"
}

#include <atomic_queue/atomic_queue.h>
#include <new>

namespace {

using ring = atomic_queue::AtomicQueueB2<void *>;

void *aq_create(const struct bench_run_shape *shape)
{
    uint64_t want = shape->capacity ? shape->capacity
                                    : (uint64_t)shape->producers * shape->max_per_producer;
    if (want < 2)
        want = 2;
    if (want > (1u << 30))
        return nullptr;
    return new (std::nothrow) ring((unsigned)want);
}

void aq_destroy(void *q)
{
    delete static_cast<ring *>(q);
}

int aq_enqueue(void *q, void *msg)
{
    return static_cast<ring *>(q)->try_push(msg) ? BENCH_OK : BENCH_FULL;
}

int aq_enqueue_batch(void *q, void *const *msgs, size_t n)
{
    /* All or nothing from single pushes: refuse the batch when the ring
     * has not room for all of it now; if other producers take that room
     * meanwhile, wait for the consumer to make more (so a batch, once
     * begun, goes in whole). */
    ring *r = static_cast<ring *>(q);
    if (r->was_size() + n > r->capacity())
        return BENCH_FULL;
    for (size_t i = 0; i < n; i++) {
        void *m = msgs[i];
        while (!r->try_push(m))
            atomic_queue::spin_loop_pause();
    }
    return BENCH_OK;
}

int aq_dequeue(void *q, void **msg)
{
    return static_cast<ring *>(q)->try_pop(*msg) ? BENCH_OK : BENCH_EMPTY;
}

size_t aq_dequeue_batch(void *q, void **msgs, size_t max)
{
    ring *r = static_cast<ring *>(q);
    size_t n = 0;
    while (n < max && r->try_pop(msgs[n]))
        n++;
    return n;
}

} // namespace

extern "C" const struct bench_adapter bench_adapter_atomic_queue = {
    "atomic_queue",
    "atomic_queue::AtomicQueueB2<void *> (bounded MPMC ring, CAS claim); batches are "
    "single pushes/pops",
    BENCH_BOUNDED | BENCH_PRESIZED | BENCH_ROUNDED_CAPACITY | BENCH_UNORDERED,
    aq_create, aq_destroy, bench_producer_is_queue, bench_producer_done_nothing,
    aq_enqueue, aq_enqueue_batch, aq_dequeue, aq_dequeue_batch,
    nullptr, nullptr, nullptr, nullptr,
};
