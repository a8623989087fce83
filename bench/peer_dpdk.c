/*
 * peer_dpdk.c - DPDK's rte_ring in multi-producer / single-consumer mode
 * (rte_ring_mp_enqueue, rte_ring_sc_dequeue), on memory of our own
 * (rte_ring_init), so no EAL, hugepages or lcores are needed.
 *
 * rte_ring is a fixed-size ring: a bounded run uses RING_F_EXACT_SZ with
 * the run's capacity; an "unbounded" run gets a ring large enough for
 * every message of the run (BENCH_PRESIZED: the table says so).  Batches
 * use the bulk (all-or-nothing) calls; dequeue batches the burst call.
 */
#include "config.h"
#include "adapter.h"

#include <rte_ring.h>
#include <stdio.h>
#include <stdlib.h>

static void *r_create(const struct bench_run_shape *shape)
{
    uint64_t want = shape->capacity ? shape->capacity
                                    : (uint64_t)shape->producers * shape->max_per_producer;
    if (want < 1)
        want = 1;
    if (want > RTE_RING_SZ_MASK) {
        fprintf(stderr, "rte_ring: %llu slots is beyond its limit\n", (unsigned long long)want);
        return NULL;
    }
    unsigned count = (unsigned)want;
    ssize_t size = rte_ring_get_memsize_elem(sizeof(void *), (unsigned)bench_pow2_at_least(count + 1));
    if (size < 0)
        return NULL;
    struct rte_ring *r = bench_aligned_alloc((size_t)size);
    if (!r)
        return NULL;
    if (rte_ring_init(r, "mpscq-bench", count, RING_F_SC_DEQ | RING_F_EXACT_SZ) != 0) {
        fprintf(stderr, "rte_ring: rte_ring_init failed\n");
        free(r);
        return NULL;
    }
    return r;
}

static void r_destroy(void *q)
{
    free(q);
}

static int r_enqueue(void *q, void *msg)
{
    return rte_ring_mp_enqueue(q, msg) == 0 ? BENCH_OK : BENCH_FULL;
}

static int r_enqueue_batch(void *q, void *const *msgs, size_t n)
{
    return rte_ring_mp_enqueue_bulk(q, msgs, (unsigned)n, NULL) == n ? BENCH_OK : BENCH_FULL;
}

static int r_dequeue(void *q, void **msg)
{
    return rte_ring_sc_dequeue(q, msg) == 0 ? BENCH_OK : BENCH_EMPTY;
}

static size_t r_dequeue_batch(void *q, void **msgs, size_t max)
{
    return rte_ring_sc_dequeue_burst(q, msgs, (unsigned)max, NULL);
}

const struct bench_adapter bench_adapter_rte = {
    .name = "rte_ring",
    .describe = "DPDK rte_ring_mp_enqueue(_bulk), rte_ring_sc_dequeue(_burst), ring on "
                "rte_ring_init'ed memory, no EAL",
    .flags = BENCH_BOUNDED | BENCH_PRESIZED | BENCH_WAITS_PREEMPTED,
    .create = r_create,
    .destroy = r_destroy,
    .producer = bench_producer_is_queue,
    .producer_done = bench_producer_done_nothing,
    .enqueue = r_enqueue,
    .enqueue_batch = r_enqueue_batch,
    .dequeue = r_dequeue,
    .dequeue_batch = r_dequeue_batch,
};
