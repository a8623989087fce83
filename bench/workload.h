/*
 * workload.h - one measured run of one queue: P producer threads, the
 * calling thread as the consumer, every message verified.
 */
#ifndef MPSCQ_BENCH_WORKLOAD_H
#define MPSCQ_BENCH_WORKLOAD_H

#include "adapter.h"
#include "stats.h"

enum bench_consumer {
    BENCH_POLL,   /* dequeue in a loop (latency: time every call) */
    BENCH_BLOCK,  /* dequeue_wait; adapters without it poll, then nap 50 us */
    BENCH_HOLD    /* start only after every producer is done (burst) */
};

struct bench_cfg {
    const struct bench_adapter *a;
    unsigned producers;
    size_t capacity;         /* 0 = unbounded */
    unsigned batch;          /* 1 = single enqueue/dequeue */
    uint64_t messages;       /* in all; split evenly across producers */
    double seconds;          /* flat out: stop after this long (0 = count only);
                              * rate mode: the run's length */
    double rate;             /* offered msg/s in all; 0 = flat out */
    enum bench_consumer consumer;
    int latency;             /* time every operation */
    unsigned consumers;      /* > 1: bench_run_many (consumers.c) */
};

struct bench_result {
    int verified;
    char verdict[320];
    uint64_t messages;       /* delivered */
    double seconds;          /* first enqueue allowed -> last message taken */
    double mmsgs;            /* million msg/s */
    double cpu_seconds;      /* user + system, the whole process */
    double cpu_ns_per_msg;
    double cpu_pct;          /* of one CPU, over the run */
    double consumer_cpu_pct; /* the consumer thread's alone */
    struct bench_pct enq, deq, empty, full, e2e; /* ns */
    /* BENCH_HOLD only */
    double bytes_per_msg;    /* resident growth per queued message */
    long rss_before_kib, rss_peak_kib, rss_after_kib;
    double drain_mmsgs;
};

/* 0 if the run happened (see r->verified), -1 if it could not start. */
int bench_run(const struct bench_cfg *cfg, struct bench_result *r);
/* The same with cfg->consumers consumer threads on the adapter's
 * dequeue_many (consumers.c): throughput and CPU only. */
int bench_run_many(const struct bench_cfg *cfg, struct bench_result *r);

/* Full-enqueue and empty-dequeue latency: a bounded queue of `capacity`
 * filled, then `producers` threads each time `attempts` enqueues that
 * must all be refused; then an emptied queue timed for `attempts`
 * dequeues.  -1 if the adapter is not bounded or the queue misbehaved. */
int bench_probe(const struct bench_adapter *a, unsigned producers, size_t capacity,
                uint64_t attempts, struct bench_pct *full, struct bench_pct *empty);

/* Resident set of this process in KiB. */
long bench_rss_kib(void);

#endif
