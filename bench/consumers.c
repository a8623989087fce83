/*
 * consumers.c - the "consumers" workload: P producer threads and C
 * consumer threads on one queue (a worker pool), flat out, every message
 * verified: each delivered exactly once, and each consumer sees each
 * producer's messages in order.  Throughput is from the start flag to
 * the last message taken.
 */
#include "config.h"
#include "workload.h"
#include "clock.h"
#include "annotate.h" /* Helgrind: the harness's own hand-offs */

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

struct many {
    const struct bench_cfg *c;
    void *q;
    uint64_t per, total;
    _Atomic unsigned ready, failed;
    _Atomic int go;
    /* Messages taken, all consumers: each adds its own count every
     * TAKEN_FLUSH takes and whenever it finds the queue empty. */
    _Atomic uint64_t taken;
    _Atomic uint64_t dup, disorder, foreign;
};

/* Verification without shared lines: each consumer marks what it took
 * in its own bitmap (bit producer * per + seq), and the bitmaps are
 * combined after the run.  One shared array written by every consumer
 * (the first version) made neighbouring messages of one producer, taken
 * by different consumers, write one cache line: a cost of the harness
 * that landed on the queues whose consumers interleave producers. */
#define TAKEN_FLUSH 64

struct mthread {
    struct many *m;
    unsigned id;
    pthread_t th;
    uint64_t *mine;     /* consumers: the bitmap */
};

static void wait_go(struct many *m)
{
    /* acquire: the queue and the counters are set up. */
    while (!atomic_load_explicit(&m->go, memory_order_acquire))
        sched_yield();
    MPSCQ_HB_AFTER(&m->go);
}

static void *many_producer(void *arg)
{
    struct mthread *t = arg;
    struct many *m = t->m;
    const struct bench_adapter *a = m->c->a;
    void *pc = a->producer(m->q, t->id);
    /* release: the context exists before the start. */
    atomic_fetch_add_explicit(pc ? &m->ready : &m->failed, 1, memory_order_release);
    if (!pc)
        return NULL;
    wait_go(m);
    for (uint64_t seq = 0; seq < m->per; seq++)
        while (a->enqueue(pc, bench_msg(t->id, seq)) != BENCH_OK)
            sched_yield();
    a->producer_done(pc);
    return NULL;
}

static void *many_consumer(void *arg)
{
    struct mthread *t = arg;
    struct many *m = t->m;
    const struct bench_adapter *a = m->c->a;
    unsigned P = m->c->producers;
    int64_t *last = malloc(P * sizeof *last);
    void *cc = last ? a->consumer(m->q, t->id) : NULL;
    atomic_fetch_add_explicit(cc ? &m->ready : &m->failed, 1, memory_order_release);
    if (!cc) {
        free(last);
        return NULL;
    }
    for (unsigned i = 0; i < P; i++)
        last[i] = -1;
    wait_go(m);
    unsigned idle = 0;
    /* relaxed: a count; the run's end is decided by the total. */
    unsigned local = 0;
    while (atomic_load_explicit(&m->taken, memory_order_relaxed) < m->total) {
        void *msg;
        if (a->dequeue_many(cc, &msg) != BENCH_OK) {
            /* Publish our count, or the others could wait for it. */
            atomic_fetch_add_explicit(&m->taken, local, memory_order_relaxed);
            local = 0;
            if (++idle > 64) {
                sched_yield();
                idle = 0;
            }
            continue;
        }
        idle = 0;
        unsigned id = bench_msg_producer(msg);
        uint64_t seq = bench_msg_seq(msg);
        if (id >= P || seq >= m->per) {
            atomic_fetch_add_explicit(&m->foreign, 1, memory_order_relaxed);
        } else {
            if ((int64_t)seq <= last[id])
                atomic_fetch_add_explicit(&m->disorder, 1, memory_order_relaxed);
            last[id] = (int64_t)seq;
            uint64_t bit = (uint64_t)id * m->per + seq;
            if (t->mine[bit / 64] & (UINT64_C(1) << (bit % 64)))
                atomic_fetch_add_explicit(&m->dup, 1, memory_order_relaxed);
            t->mine[bit / 64] |= UINT64_C(1) << (bit % 64);
        }
        if (++local == TAKEN_FLUSH) {
            atomic_fetch_add_explicit(&m->taken, local, memory_order_relaxed);
            local = 0;
        }
    }
    atomic_fetch_add_explicit(&m->taken, local, memory_order_relaxed);
    a->consumer_done(cc);
    free(last);
    return NULL;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int bench_run_many(const struct bench_cfg *c, struct bench_result *r)
{
    memset(r, 0, sizeof *r);
    bench_clock_init();
    unsigned P = c->producers, C = c->consumers;
    if (P < 1 || C < 2 || !c->a->dequeue_many)
        return -1;
    struct many m = { .c = c };
    MPSCQ_HG_ATOMIC_VAR(m.ready);
    MPSCQ_HG_ATOMIC_VAR(m.failed);
    MPSCQ_HG_ATOMIC_VAR(m.go);
    MPSCQ_HG_ATOMIC_VAR(m.taken);
    m.per = c->messages / P ? c->messages / P : 1;
    m.total = m.per * P;
    size_t words = (size_t)((m.total + 63) / 64);
    struct mthread *th = calloc(P + C, sizeof *th);
    int nomem = !th;
    for (unsigned i = P; th && i < P + C; i++)
        nomem |= !(th[i].mine = calloc(words, sizeof(uint64_t)));
    if (nomem) {
        for (unsigned i = P; th && i < P + C; i++)
            free(th[i].mine);
        free(th);
        snprintf(r->verdict, sizeof r->verdict, "not run: out of memory");
        return -1;
    }
    struct bench_run_shape shape = { c->capacity, P, m.per, C };
    m.q = c->a->create(&shape);
    if (!m.q) {
        for (unsigned i = P; i < P + C; i++)
            free(th[i].mine);
        free(th);
        snprintf(r->verdict, sizeof r->verdict, "not run: %s could not be created", c->a->name);
        return -1;
    }
    unsigned started = 0;
    for (; started < P + C; started++) {
        th[started].m = &m;
        th[started].id = started < P ? started : started - P;
        if (pthread_create(&th[started].th, NULL, started < P ? many_producer : many_consumer,
                           &th[started]) != 0)
            break;
    }
    while (atomic_load_explicit(&m.ready, memory_order_acquire) +
               atomic_load_explicit(&m.failed, memory_order_acquire) < started)
        sched_yield();
    int failed = started < P + C || atomic_load_explicit(&m.failed, memory_order_relaxed);
    double cpu0 = cpu_seconds();
    uint64_t t0 = bench_now_ns();
    MPSCQ_HB_BEFORE(&m.go);
    /* release: pairs with wait_go. */
    atomic_store_explicit(&m.go, 1, memory_order_release);
    if (failed) {
        /* Some thread could not start: the others cannot finish; it is
         * a setup failure, reported and not measured. */
        fprintf(stderr, "mpscq-bench: %s: a producer or consumer could not start\n",
                c->a->name);
        exit(3);
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i].th, NULL);
    uint64_t t1 = bench_now_ns();
    r->cpu_seconds = cpu_seconds() - cpu0;
    r->seconds = (double)(t1 - t0) / 1e9;
    r->messages = atomic_load(&m.taken);
    r->mmsgs = r->seconds > 0 ? (double)r->messages / r->seconds / 1e6 : 0;
    r->cpu_ns_per_msg = r->messages ? r->cpu_seconds * 1e9 / (double)r->messages : 0;
    r->cpu_pct = r->seconds > 0 ? 100.0 * r->cpu_seconds / r->seconds : 0;
    /* Combine the bitmaps (the joins ordered their writes before us):
     * every message in exactly one. */
    uint64_t lost = 0, twice = 0;
    for (size_t w = 0; w < words; w++) {
        uint64_t any = 0, two = 0;
        for (unsigned i = P; i < P + C; i++) {
            two |= any & th[i].mine[w];
            any |= th[i].mine[w];
        }
        uint64_t want = w + 1 < words || m.total % 64 == 0
                            ? ~UINT64_C(0)
                            : (UINT64_C(1) << (m.total % 64)) - 1;
        lost += (uint64_t)__builtin_popcountll(want & ~any);
        twice += (uint64_t)__builtin_popcountll(two);
    }
    uint64_t dup = atomic_load(&m.dup) + twice, dis = atomic_load(&m.disorder),
             foreign = atomic_load(&m.foreign);
    r->verified = !lost && !dup && !dis && !foreign;
    if (r->verified)
        snprintf(r->verdict, sizeof r->verdict,
                 "ok: %llu messages, each once, each consumer saw each producer in order",
                 (unsigned long long)m.total);
    else
        snprintf(r->verdict, sizeof r->verdict,
                 "FAILED: %llu lost, %llu duplicated, %llu out of a producer's order at a "
                 "consumer, %llu foreign",
                 (unsigned long long)lost, (unsigned long long)dup, (unsigned long long)dis,
                 (unsigned long long)foreign);
    c->a->destroy(m.q);
    for (unsigned i = P; i < P + C; i++)
        free(th[i].mine);
    free(th);
    return 0;
}
