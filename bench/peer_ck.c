/*
 * peer_ck.c - Concurrency Kit's Michael-Scott queue (ck_fifo_mpmc),
 * used with one consumer.
 *
 * Each message needs an entry; as for wfcqueue, every producer gets a
 * slab of entries for the messages it will send.  An entry handed back
 * by dequeue ("garbage") may still be read by a lagging producer, which
 * is why CK wants safe memory reclamation; the slabs live until the run
 * is over, so the harness needs none and times none.  Batches are n
 * single enqueues: ck_fifo_mpmc has no batch operation.
 */
#include "config.h"
#include "adapter.h"

#include <ck_fifo.h>
#include <stdlib.h>
#include <string.h>

struct cq {
    ck_fifo_mpmc_t fifo;
    ck_fifo_mpmc_entry_t *stub;
    ck_fifo_mpmc_entry_t **slab;  /* one per producer */
    unsigned producers;
    uint64_t max;
};

struct cctx {
    struct cq *q;
    ck_fifo_mpmc_entry_t *slab;
    uint64_t used, max;
};

static void *c_create(const struct bench_run_shape *shape)
{
    struct cq *q = bench_aligned_alloc(sizeof *q);
    if (!q)
        return NULL;
    memset(q, 0, sizeof *q);
    q->stub = bench_aligned_alloc(sizeof *q->stub);
    q->slab = calloc(shape->producers, sizeof *q->slab);
    if (!q->stub || !q->slab) {
        free(q->stub);
        free(q->slab);
        free(q);
        return NULL;
    }
    q->producers = shape->producers;
    q->max = shape->max_per_producer;
    ck_fifo_mpmc_init(&q->fifo, q->stub);
    return q;
}

static void c_destroy(void *p)
{
    struct cq *q = p;
    for (unsigned i = 0; i < q->producers; i++)
        free(q->slab[i]);
    free(q->slab);
    free(q->stub);
    free(q);
}

static void *c_producer(void *p, unsigned id)
{
    struct cq *q = p;
    struct cctx *c = malloc(sizeof *c);
    if (!c)
        return NULL;
    c->q = q;
    c->used = 0;
    c->max = q->max;
    /* Entries hold a 16-byte (pointer, generation) pair: 16-byte aligned. */
    c->slab = q->slab[id] = bench_aligned_alloc((size_t)q->max * sizeof *c->slab);
    if (!c->slab) {
        free(c);
        return NULL;
    }
    return c;
}

static void c_producer_done(void *pc)
{
    free(pc);
}

static int c_enqueue(void *pc, void *msg)
{
    struct cctx *c = pc;
    if (c->used == c->max)
        return BENCH_FULL;
    ck_fifo_mpmc_enqueue(&c->q->fifo, &c->slab[c->used++], msg);
    return BENCH_OK;
}

static int c_enqueue_batch(void *pc, void *const *msgs, size_t n)
{
    struct cctx *c = pc;
    if (c->max - c->used < n)
        return BENCH_FULL;
    for (size_t i = 0; i < n; i++)
        ck_fifo_mpmc_enqueue(&c->q->fifo, &c->slab[c->used++], msgs[i]);
    return BENCH_OK;
}

static int c_dequeue(void *p, void **msg)
{
    struct cq *q = p;
    ck_fifo_mpmc_entry_t *garbage;
    return ck_fifo_mpmc_dequeue(&q->fifo, msg, &garbage) ? BENCH_OK : BENCH_EMPTY;
}

static size_t c_dequeue_batch(void *p, void **msgs, size_t max)
{
    size_t i = 0;
    while (i < max && c_dequeue(p, &msgs[i]) == BENCH_OK)
        i++;
    return i;
}

const struct bench_adapter bench_adapter_ck = {
    .name = "ck_fifo_mpmc",
    .describe = "Concurrency Kit ck_fifo_mpmc_enqueue/_dequeue; entry per message from a "
                "per-producer slab, never reclaimed during the run",
    .flags = BENCH_UNBOUNDED,
    .create = c_create,
    .destroy = c_destroy,
    .producer = c_producer,
    .producer_done = c_producer_done,
    .enqueue = c_enqueue,
    .enqueue_batch = c_enqueue_batch,
    .dequeue = c_dequeue,
    .dequeue_batch = c_dequeue_batch,
    /* ck_fifo_mpmc_dequeue is multi-consumer as it is. */
    .consumer = bench_producer_is_queue,
    .consumer_done = bench_producer_done_nothing,
    .dequeue_many = c_dequeue,
};
