/*
 * adapter.h - the one small interface every queue in mpscq-bench sits
 * behind: libmpscq, the mutex + ring baseline and the peers.
 *
 * Calls: create once per run; producer() once per producer thread (in
 * that thread); enqueue from producer threads; dequeue and destroy from
 * the consumer thread only.
 */
#ifndef MPSCQ_BENCH_ADAPTER_H
#define MPSCQ_BENCH_ADAPTER_H

#include <stddef.h>
#include <stdint.h>

enum {
    BENCH_OK = 0,
    BENCH_FULL = 1,  /* enqueue: bounded queue full; nothing was queued */
    BENCH_EMPTY = 1  /* dequeue: nothing ready */
};

enum {
    BENCH_UNBOUNDED = 1u << 0,  /* grows without a capacity */
    BENCH_BOUNDED = 1u << 1,    /* honours a capacity */
    BENCH_PRESIZED = 1u << 2,   /* no unbounded mode: an "unbounded" run
                                 * gets a ring sized for every message */
    BENCH_ONE_PRODUCER = 1u << 3, /* a single-producer reference: runs
                                  * with one producer only */
    BENCH_ROUNDED_CAPACITY = 1u << 4, /* bounded, but holds more than the
                                  * capacity asked (a rounded-up ring):
                                  * no full-queue probe */
    BENCH_UNORDERED = 1u << 5,   /* known to break per-producer order when
                                  * a producer is preempted mid-push: its
                                  * runs may fail verification (the
                                  * benchmark reports them FAILED) */
    BENCH_WAITS_PREEMPTED = 1u << 6 /* a producer spins until every earlier
                                  * producer finished its enqueue (DPDK's
                                  * MP ring): with more producers than
                                  * CPUs a run may take a time slice per
                                  * message, or stall (the benchmark
                                  * reports it STALLED) */
};

struct bench_run_shape {
    size_t capacity;             /* 0 = unbounded */
    unsigned producers;
    uint64_t max_per_producer;   /* messages each producer may send */
    unsigned consumers;          /* > 1: the "consumers" workload (dequeue_many) */
};

struct bench_adapter {
    const char *name;
    const char *describe;        /* one line: what exactly is measured */
    unsigned flags;
    /* NULL on failure (message already printed). */
    void *(*create)(const struct bench_run_shape *shape);
    void (*destroy)(void *q);
    /* Per-producer context, allocated in the producer's thread. */
    void *(*producer)(void *q, unsigned id);
    void (*producer_done)(void *pc);
    int (*enqueue)(void *pc, void *msg);
    /* All n or nothing. */
    int (*enqueue_batch)(void *pc, void *const *msgs, size_t n);
    int (*dequeue)(void *q, void **msg);
    size_t (*dequeue_batch)(void *q, void **msgs, size_t max);
    /* Optional: sleep until a message or timeout_ns; BENCH_OK or
     * BENCH_EMPTY.  NULL = the harness polls and naps. */
    int (*dequeue_wait)(void *q, void **msg, long long timeout_ns);
    /* Optional, the "consumers" workload: several consumer threads at
     * once, each with its own context (made in its thread, like a
     * producer's), each calling dequeue_many with it.  NULL: the queue has
     * one consumer only. */
    void *(*consumer)(void *q, unsigned id);
    void (*consumer_done)(void *cc);
    int (*dequeue_many)(void *cc, void **msg);
};

/* NULL-terminated list of the queues compiled in; [0] is libmpscq,
 * [1] the mutex baseline. */
extern const struct bench_adapter *const bench_adapters[];

extern const struct bench_adapter bench_adapter_mpscq;
extern const struct bench_adapter bench_adapter_mpscq_handle;
extern const struct bench_adapter bench_adapter_mpscq_lowcpu;
extern const struct bench_adapter bench_adapter_mpscq_lanes;
extern const struct bench_adapter bench_adapter_mutex;
extern const struct bench_adapter bench_adapter_wfcq;
extern const struct bench_adapter bench_adapter_ck;
extern const struct bench_adapter bench_adapter_rte;
extern const struct bench_adapter bench_adapter_moodycamel;
extern const struct bench_adapter bench_adapter_atomic_queue;
extern const struct bench_adapter bench_adapter_spsc;

/* Shared adapter helpers.  For queues with no per-producer state: the
 * context is the queue itself, and there is nothing to release. */
void *bench_producer_is_queue(void *q, unsigned id);
void bench_producer_done_nothing(void *pc);
void *bench_aligned_alloc(size_t size);
size_t bench_pow2_at_least(uint64_t n);

#endif
