/*
 * peer_urcu.c - liburcu's wait-free concurrent queue (urcu/wfcqueue.h).
 *
 * wfcqueue is intrusive: the user embeds a node in each message.  The
 * harness gives each producer a slab of {node, message} records, one per
 * message it will send, so the node costs what it costs a real user
 * (memory counted in bytes per message) and no malloc/free is timed.
 * Dequeue is the non-blocking variant: a producer stalled between its
 * XCHG and its link makes it report "would block", counted as empty.
 * Batches: the producer links its batch into a private queue and splices
 * it in with one XCHG (__cds_wfcq_splice_blocking on an uncontended
 * source, which never waits).
 */
#include "config.h"
#include "adapter.h"

#define _LGPL_SOURCE 1
#include <urcu/wfcqueue.h>
#include <pthread.h>

#include <stdlib.h>
#include <string.h>

struct wnode {
    struct cds_wfcq_node node;
    void *msg;
};

struct wprod {
    struct wnode *slab;
    uint64_t used, max;
};

struct wq {
    struct __cds_wfcq_head head;
    char pad[128 - sizeof(struct __cds_wfcq_head)];
    struct cds_wfcq_tail tail;
    char pad2[128 - sizeof(struct cds_wfcq_tail)];
    struct wprod *prod;   /* one per producer, freed in destroy */
    pthread_mutex_t dlock; /* several consumers: wfcqueue's dequeue needs mutual exclusion */
    unsigned producers;
    uint64_t max;
};

static void *w_create(const struct bench_run_shape *shape)
{
    struct wq *q = bench_aligned_alloc(sizeof *q);
    if (!q)
        return NULL;
    memset(q, 0, sizeof *q);
    __cds_wfcq_init(&q->head, &q->tail);
    pthread_mutex_init(&q->dlock, NULL);
    q->producers = shape->producers;
    q->max = shape->max_per_producer;
    q->prod = calloc(shape->producers, sizeof *q->prod);
    if (!q->prod) {
        free(q);
        return NULL;
    }
    return q;
}

static void w_destroy(void *p)
{
    struct wq *q = p;
    for (unsigned i = 0; i < q->producers; i++)
        free(q->prod[i].slab);
    free(q->prod);
    free(q);
}

/* The context is {queue, producer}: the slab pointer lives in the queue
 * so that destroy can free it after the consumer is done with it. */
struct wctx {
    struct wq *q;
    struct wprod *p;
    struct __cds_wfcq_head lh;
    struct cds_wfcq_tail lt;
};

static void *w_producer(void *p, unsigned id)
{
    struct wq *q = p;
    struct wctx *c = malloc(sizeof *c);
    if (!c)
        return NULL;
    c->q = q;
    c->p = &q->prod[id];
    c->p->max = q->max;
    c->p->used = 0;
    c->p->slab = malloc((size_t)q->max * sizeof *c->p->slab);
    if (!c->p->slab) {
        free(c);
        return NULL;
    }
    __cds_wfcq_init(&c->lh, &c->lt);
    return c;
}

static void w_producer_done(void *pc)
{
    free(pc);
}

static struct wnode *w_node(struct wctx *c, void *msg)
{
    struct wnode *n = &c->p->slab[c->p->used++];
    cds_wfcq_node_init(&n->node);
    n->msg = msg;
    return n;
}

static int w_enqueue(void *pc, void *msg)
{
    struct wctx *c = pc;
    if (c->p->used == c->p->max)
        return BENCH_FULL; /* more than the run said it would send */
    cds_wfcq_enqueue(&c->q->head, &c->q->tail, &w_node(c, msg)->node);
    return BENCH_OK;
}

static int w_enqueue_batch(void *pc, void *const *msgs, size_t n)
{
    struct wctx *c = pc;
    if (c->p->max - c->p->used < n)
        return BENCH_FULL;
    for (size_t i = 0; i < n; i++)
        cds_wfcq_enqueue(&c->lh, &c->lt, &w_node(c, msgs[i])->node);
    __cds_wfcq_splice_blocking(&c->q->head, &c->q->tail, &c->lh, &c->lt);
    return BENCH_OK;
}

static int w_dequeue(void *p, void **msg)
{
    struct wq *q = p;
    struct cds_wfcq_node *n = __cds_wfcq_dequeue_nonblocking(&q->head, &q->tail);
    if (n == NULL || n == CDS_WFCQ_WOULDBLOCK)
        return BENCH_EMPTY;
    *msg = caa_container_of(n, struct wnode, node)->msg;
    return BENCH_OK;
}

static size_t w_dequeue_batch(void *p, void **msgs, size_t max)
{
    size_t i = 0;
    while (i < max && w_dequeue(p, &msgs[i]) == BENCH_OK)
        i++;
    return i;
}

/* Several consumers: wfcqueue's dequeue is single-consumer, so they take
 * a lock around it (liburcu's cds_wfcq_dequeue_blocking does the same
 * with the head's mutex). */
static int w_dequeue_locked(void *p, void **msg)
{
    struct wq *q = p;
    pthread_mutex_lock(&q->dlock);
    int rc = w_dequeue(p, msg);
    pthread_mutex_unlock(&q->dlock);
    return rc;
}

const struct bench_adapter bench_adapter_wfcq = {
    .name = "wfcqueue",
    .describe = "liburcu " "cds_wfcq_enqueue, __cds_wfcq_dequeue_nonblocking; node per message "
                "from a per-producer slab; batch = private queue + splice",
    .flags = BENCH_UNBOUNDED,
    .create = w_create,
    .destroy = w_destroy,
    .producer = w_producer,
    .producer_done = w_producer_done,
    .enqueue = w_enqueue,
    .enqueue_batch = w_enqueue_batch,
    .dequeue = w_dequeue,
    .dequeue_batch = w_dequeue_batch,
    .consumer = bench_producer_is_queue,
    .consumer_done = bench_producer_done_nothing,
    .dequeue_many = w_dequeue_locked,
};
