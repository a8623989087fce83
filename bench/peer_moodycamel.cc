/*
 * peer_moodycamel.cc - Cameron Desrochers' moodycamel::ConcurrentQueue
 * (Debian's libconcurrentqueue-dev), the fastest unbounded peer in the
 * anchors' figures, with what makes it fastest: a ProducerToken per
 * producer (its own sub-queue) and a ConsumerToken for the consumer.
 * Batches use enqueue_bulk / try_dequeue_bulk.  It is not linearizable
 * and keeps no order across producers (the harness only checks
 * per-producer order), and it never returns memory during the run.
 */
#include "config.h"
extern "C" {
#include "adapter.h"
}

#include <concurrentqueue/concurrentqueue.h>
#include <new>

namespace {

struct mc_queue {
    moodycamel::ConcurrentQueue<void *> q;
    moodycamel::ConsumerToken ctok;
    explicit mc_queue(size_t n) : q(n), ctok(q) {}
};

struct mc_producer {
    mc_queue *mq;
    moodycamel::ProducerToken tok;
    explicit mc_producer(mc_queue *m) : mq(m), tok(m->q) {}
};

void *mc_create(const struct bench_run_shape *shape)
{
    (void)shape;
    return new (std::nothrow) mc_queue(32 * 1024);
}

void mc_destroy(void *q)
{
    delete static_cast<mc_queue *>(q);
}

void *mc_producer_new(void *q, unsigned id)
{
    (void)id;
    return new (std::nothrow) mc_producer(static_cast<mc_queue *>(q));
}

void mc_producer_done(void *pc)
{
    delete static_cast<mc_producer *>(pc);
}

int mc_enqueue(void *pc, void *msg)
{
    mc_producer *p = static_cast<mc_producer *>(pc);
    return p->mq->q.enqueue(p->tok, msg) ? BENCH_OK : BENCH_FULL;
}

int mc_enqueue_batch(void *pc, void *const *msgs, size_t n)
{
    mc_producer *p = static_cast<mc_producer *>(pc);
    return p->mq->q.enqueue_bulk(p->tok, msgs, n) ? BENCH_OK : BENCH_FULL;
}

int mc_dequeue(void *q, void **msg)
{
    mc_queue *m = static_cast<mc_queue *>(q);
    return m->q.try_dequeue(m->ctok, *msg) ? BENCH_OK : BENCH_EMPTY;
}

size_t mc_dequeue_batch(void *q, void **msgs, size_t max)
{
    mc_queue *m = static_cast<mc_queue *>(q);
    return m->q.try_dequeue_bulk(m->ctok, msgs, max);
}

/* Several consumers: a ConsumerToken each. */
struct mc_consumer {
    mc_queue *mq;
    moodycamel::ConsumerToken tok;
    explicit mc_consumer(mc_queue *m) : mq(m), tok(m->q) {}
};

void *mc_consumer_new(void *q, unsigned id)
{
    (void)id;
    return new (std::nothrow) mc_consumer(static_cast<mc_queue *>(q));
}

void mc_consumer_done(void *cc)
{
    delete static_cast<mc_consumer *>(cc);
}

int mc_dequeue_many(void *cc, void **msg)
{
    mc_consumer *c = static_cast<mc_consumer *>(cc);
    return c->mq->q.try_dequeue(c->tok, *msg) ? BENCH_OK : BENCH_EMPTY;
}

} // namespace

extern "C" const struct bench_adapter bench_adapter_moodycamel = {
    "moodycamel",
    "moodycamel::ConcurrentQueue, a ProducerToken per producer, a ConsumerToken; "
    "enqueue_bulk / try_dequeue_bulk",
    BENCH_UNBOUNDED,
    mc_create, mc_destroy, mc_producer_new, mc_producer_done,
    mc_enqueue, mc_enqueue_batch, mc_dequeue, mc_dequeue_batch,
    nullptr, mc_consumer_new, mc_consumer_done, mc_dequeue_many,
};
