/*
 * adapter_spsc.c - the reference row: a minimal Lamport single-producer
 * single-consumer ring, the upper bound of what one producer and one
 * consumer can do through shared memory (issue 10's "1P1C >= 0.5x an
 * SPSC ring").  Not an MPSC queue: it runs with one producer only.
 *
 * Each side owns one index and keeps a cached copy of the other's, read
 * again only when the cache says full (producer) or empty (consumer), as
 * in Lamport's ring with the usual cached-index refinement.  An
 * "unbounded" run gets a ring sized for every message (BENCH_PRESIZED).
 */
#include "adapter.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct spsc {
    _Alignas(128) _Atomic uint64_t tail;  /* producer's: next slot to write */
    uint64_t head_cache;                  /* producer's copy of head */
    _Alignas(128) _Atomic uint64_t head;  /* consumer's: next slot to read */
    uint64_t tail_cache;                  /* consumer's copy of tail */
    _Alignas(128) void **buf;
    uint64_t cap, mask;
};

static void *s_create(const struct bench_run_shape *shape)
{
    if (shape->producers != 1)
        return NULL; /* the harness skips it before that (BENCH_ONE_PRODUCER) */
    uint64_t cap = shape->capacity ? shape->capacity : shape->max_per_producer;
    struct spsc *r = bench_aligned_alloc(sizeof *r);
    if (!r)
        return NULL;
    memset(r, 0, sizeof *r);
    size_t size = bench_pow2_at_least(cap ? cap : 1);
    r->buf = bench_aligned_alloc(size * sizeof *r->buf);
    if (!r->buf) {
        free(r);
        return NULL;
    }
    r->cap = cap;
    r->mask = size - 1;
    atomic_init(&r->tail, 0);
    atomic_init(&r->head, 0);
    return r;
}

static void s_destroy(void *q)
{
    struct spsc *r = q;
    free(r->buf);
    free(r);
}

static int s_enqueue_batch(void *q, void *const *msgs, size_t n)
{
    struct spsc *r = q;
    /* Relaxed: the producer's own index. */
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (t + n - r->head_cache > r->cap) {
        /* Acquire: the consumer has read the slots it freed. */
        r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
        if (t + n - r->head_cache > r->cap)
            return BENCH_FULL;
    }
    for (size_t i = 0; i < n; i++)
        r->buf[(t + i) & r->mask] = msgs[i];
    /* Release: the slots are written before the consumer sees them. */
    atomic_store_explicit(&r->tail, t + n, memory_order_release);
    return BENCH_OK;
}

static int s_enqueue(void *q, void *msg)
{
    return s_enqueue_batch(q, &msg, 1);
}

static size_t s_dequeue_batch(void *q, void **msgs, size_t max)
{
    struct spsc *r = q;
    /* Relaxed: the consumer's own index. */
    uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (h == r->tail_cache) {
        /* Acquire: pairs with the producer's release of tail. */
        r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (h == r->tail_cache)
            return 0;
    }
    size_t n = (size_t)(r->tail_cache - h);
    if (n > max)
        n = max;
    for (size_t i = 0; i < n; i++)
        msgs[i] = r->buf[(h + i) & r->mask];
    /* Release: the slots are read before the producer reuses them. */
    atomic_store_explicit(&r->head, h + n, memory_order_release);
    return n;
}

static int s_dequeue(void *q, void **msg)
{
    return s_dequeue_batch(q, msg, 1) ? BENCH_OK : BENCH_EMPTY;
}

const struct bench_adapter bench_adapter_spsc = {
    .name = "spsc-ring",
    .describe = "reference: a Lamport single-producer ring with cached indices "
                "(one producer only)",
    .flags = BENCH_BOUNDED | BENCH_PRESIZED | BENCH_ONE_PRODUCER,
    .create = s_create,
    .destroy = s_destroy,
    .producer = bench_producer_is_queue,
    .producer_done = bench_producer_done_nothing,
    .enqueue = s_enqueue,
    .enqueue_batch = s_enqueue_batch,
    .dequeue = s_dequeue,
    .dequeue_batch = s_dequeue_batch,
};
