/*
 * adapters.c - the list of queues compiled into mpscq-bench, the
 * libmpscq adapter and helpers shared by the adapters.
 */
#include "config.h"
#include "adapter.h"

#include <mpscq.h>
#include <stdio.h>
#include <stdlib.h>

const struct bench_adapter *const bench_adapters[] = {
    &bench_adapter_mpscq,
    &bench_adapter_mutex,
    &bench_adapter_mpscq_handle,
    &bench_adapter_mpscq_lowcpu,
    &bench_adapter_mpscq_lanes,
#ifdef HAVE_PEER_URCU
    &bench_adapter_wfcq,
#endif
#ifdef HAVE_PEER_CK
    &bench_adapter_ck,
#endif
#ifdef HAVE_PEER_DPDK
    &bench_adapter_rte,
#endif
#ifdef HAVE_PEER_MOODYCAMEL
    &bench_adapter_moodycamel,
#endif
#ifdef HAVE_PEER_ATOMIC_QUEUE
    &bench_adapter_atomic_queue,
#endif
    &bench_adapter_spsc,
    NULL
};

void *bench_producer_is_queue(void *q, unsigned id)
{
    (void)id;
    return q;
}

void bench_producer_done_nothing(void *pc)
{
    (void)pc;
}

void *bench_aligned_alloc(size_t size)
{
    void *p = NULL;
    /* 128: two cache lines, so adjacent-line prefetch cannot couple the
     * producers' and the consumer's hot lines. */
    if (posix_memalign(&p, 128, size ? size : 1) != 0)
        return NULL;
    return p;
}

size_t bench_pow2_at_least(uint64_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

/* ---- libmpscq ------------------------------------------------------ */

static void *mq_create_nap(const struct bench_run_shape *shape, unsigned long long nap_ns)
{
    mpscq_config cfg;
    mpscq_config_init(&cfg);
    cfg.capacity = shape->capacity;
    cfg.nap_ns = nap_ns;
    /* The "consumers" workload: the many-consumer mode. */
    cfg.consumers = shape->consumers > 1 ? MPSCQ_CONSUMERS_MANY : 0;
    mpscq_t *q;
    int rc = mpscq_create(&q, &cfg);
    if (rc != MPSCQ_OK) {
        fprintf(stderr, "libmpscq: mpscq_create: %s\n", mpscq_strerror(rc));
        return NULL;
    }
    return q;
}

static void *mq_create(const struct bench_run_shape *shape)
{
    return mq_create_nap(shape, 0);
}

/* The low-CPU setting of the sleeping consumer: naps of 200 us. */
#define BENCH_LOWCPU_NAP_NS 200000ull
static void *mq_create_lowcpu(const struct bench_run_shape *shape)
{
    return mq_create_nap(shape, BENCH_LOWCPU_NAP_NS);
}

static void mq_destroy(void *q)
{
    mpscq_destroy(q, NULL, NULL);
}

static int mq_enqueue(void *q, void *msg)
{
    return mpscq_enqueue(q, msg) == MPSCQ_OK ? BENCH_OK : BENCH_FULL;
}

static int mq_enqueue_batch(void *q, void *const *msgs, size_t n)
{
    return mpscq_enqueue_batch(q, msgs, n) == MPSCQ_OK ? BENCH_OK : BENCH_FULL;
}

static int mq_dequeue(void *q, void **msg)
{
    return mpscq_dequeue(q, msg) == MPSCQ_OK ? BENCH_OK : BENCH_EMPTY;
}

static size_t mq_dequeue_batch(void *q, void **msgs, size_t max)
{
    return mpscq_dequeue_batch(q, msgs, max);
}

static int mq_dequeue_wait(void *q, void **msg, long long timeout_ns)
{
    return mpscq_dequeue_wait(q, msg, timeout_ns) == MPSCQ_OK ? BENCH_OK : BENCH_EMPTY;
}

const struct bench_adapter bench_adapter_mpscq = {
    .name = "libmpscq",
    .describe = "mpscq_enqueue/_batch, mpscq_dequeue/_batch, mpscq_dequeue_wait (futex)",
    .flags = BENCH_UNBOUNDED | BENCH_BOUNDED,
    .create = mq_create,
    .destroy = mq_destroy,
    .producer = bench_producer_is_queue,
    .producer_done = bench_producer_done_nothing,
    .enqueue = mq_enqueue,
    .enqueue_batch = mq_enqueue_batch,
    .dequeue = mq_dequeue,
    .dequeue_batch = mq_dequeue_batch,
    .dequeue_wait = mq_dequeue_wait,
    .consumer = bench_producer_is_queue,
    .consumer_done = bench_producer_done_nothing,
    .dequeue_many = mq_dequeue,
};

/* The same with mpscq_config.nap_ns = 200 us: what a sleeping consumer
 * costs when latency may be traded for CPU. */
const struct bench_adapter bench_adapter_mpscq_lowcpu = {
    .name = "mpscq-lowcpu",
    .describe = "libmpscq with nap_ns = 200 us: the low-CPU sleeping consumer",
    .flags = BENCH_UNBOUNDED | BENCH_BOUNDED,
    .create = mq_create_lowcpu,
    .destroy = mq_destroy,
    .producer = bench_producer_is_queue,
    .producer_done = bench_producer_done_nothing,
    .enqueue = mq_enqueue,
    .enqueue_batch = mq_enqueue_batch,
    .dequeue = mq_dequeue,
    .dequeue_batch = mq_dequeue_batch,
    .dequeue_wait = mq_dequeue_wait,
};

/* ---- libmpscq through producer handles (mpscq_producer_*) ---------- */

static void *mqh_producer(void *q, unsigned id)
{
    (void)id;
    mpscq_producer_t *p;
    int rc = mpscq_producer_create(q, &p);
    if (rc != MPSCQ_OK) {
        fprintf(stderr, "libmpscq: mpscq_producer_create: %s\n", mpscq_strerror(rc));
        return NULL;
    }
    return p;
}

static void mqh_producer_done(void *pc)
{
    mpscq_producer_destroy(pc);
}

static int mqh_enqueue(void *pc, void *msg)
{
    return mpscq_producer_enqueue(pc, msg) == MPSCQ_OK ? BENCH_OK : BENCH_FULL;
}

static int mqh_enqueue_batch(void *pc, void *const *msgs, size_t n)
{
    return mpscq_producer_enqueue_batch(pc, msgs, n) == MPSCQ_OK ? BENCH_OK : BENCH_FULL;
}

const struct bench_adapter bench_adapter_mpscq_handle = {
    .name = "mpscq-handle",
    .describe = "mpscq_producer_enqueue/_batch (a handle per producer), consumer as libmpscq",
    .flags = BENCH_UNBOUNDED | BENCH_BOUNDED,
    .create = mq_create,
    .destroy = mq_destroy,
    .producer = mqh_producer,
    .producer_done = mqh_producer_done,
    .enqueue = mqh_enqueue,
    .enqueue_batch = mqh_enqueue_batch,
    .dequeue = mq_dequeue,
    .dequeue_batch = mq_dequeue_batch,
    .dequeue_wait = mq_dequeue_wait,
};

/* ---- libmpscq through a queue set (mpscq_set_*) --------------------- */

/* Three lanes (priorities 0, 1, 2); the producers use the lowest, so
 * every take first finds the two higher lanes empty: the set's worst
 * case against one queue. */
struct mq_lanes {
    mpscq_set_t *set;
    mpscq_t *q[3];
};

static void mql_destroy(void *p)
{
    struct mq_lanes *l = p;
    mpscq_set_destroy(l->set);
    for (int i = 0; i < 3; i++)
        mpscq_destroy(l->q[i], NULL, NULL);
    free(l);
}

static void *mql_create(const struct bench_run_shape *shape)
{
    struct mq_lanes *l = calloc(1, sizeof *l);
    if (!l || mpscq_set_create(&l->set) != MPSCQ_OK) {
        fprintf(stderr, "libmpscq: mpscq_set_create failed\n");
        free(l);
        return NULL;
    }
    for (int i = 0; i < 3; i++) {
        if (!(l->q[i] = mq_create(shape)) || mpscq_set_add(l->set, l->q[i], (unsigned)i)) {
            fprintf(stderr, "libmpscq: a lane could not be made\n");
            mql_destroy(l);
            return NULL;
        }
    }
    return l;
}

static void *mql_producer(void *p, unsigned id)
{
    (void)id;
    return ((struct mq_lanes *)p)->q[2];
}

static int mql_dequeue(void *p, void **msg)
{
    return mpscq_set_dequeue_wait(((struct mq_lanes *)p)->set, NULL, msg, 0) == MPSCQ_OK
               ? BENCH_OK
               : BENCH_EMPTY;
}

static size_t mql_dequeue_batch(void *p, void **msgs, size_t max)
{
    size_t n = 0;
    while (n < max && mql_dequeue(p, &msgs[n]) == BENCH_OK)
        n++;
    return n;
}

static int mql_dequeue_wait(void *p, void **msg, long long timeout_ns)
{
    return mpscq_set_dequeue_wait(((struct mq_lanes *)p)->set, NULL, msg, timeout_ns) ==
                   MPSCQ_OK
               ? BENCH_OK
               : BENCH_EMPTY;
}

const struct bench_adapter bench_adapter_mpscq_lanes = {
    .name = "mpscq-lanes",
    .describe = "a queue set of 3 lanes, producers on the lowest: mpscq_set_dequeue_wait",
    .flags = BENCH_UNBOUNDED | BENCH_BOUNDED,
    .create = mql_create,
    .destroy = mql_destroy,
    .producer = mql_producer,
    .producer_done = bench_producer_done_nothing,
    .enqueue = mq_enqueue,
    .enqueue_batch = mq_enqueue_batch,
    .dequeue = mql_dequeue,
    .dequeue_batch = mql_dequeue_batch,
    .dequeue_wait = mql_dequeue_wait,
};
