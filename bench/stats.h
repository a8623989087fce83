/*
 * stats.h - mpscq-bench statistics and delivery verification.
 */
#ifndef MPSCQ_BENCH_STATS_H
#define MPSCQ_BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

/* Latency percentiles of one sample set, in the samples' unit. */
struct bench_pct {
    uint64_t n, p50, p99, p999, max;
};

/* Sorts v[0..n) in place and fills *out (all zero when n == 0).  The
 * q-quantile is the smallest sample with at least q*n samples <= it. */
void bench_percentiles(uint64_t *v, size_t n, struct bench_pct *out);

/* Median, minimum and maximum of the repeats of one figure. */
struct bench_summary {
    double median, min, max;
    int n;
};
/* Does not reorder v; the median of an even count is the mean of the
 * middle two. */
void bench_summarize(const double *v, int n, struct bench_summary *out);

/*
 * Every message the benchmark sends encodes (producer, sequence number);
 * the consumer feeds each one to the verifier, which checks no loss, no
 * duplicate and per-producer FIFO.
 */
#define BENCH_SEQ_BITS 40
static inline void *bench_msg(unsigned producer, uint64_t seq)
{
    return (void *)(((uintptr_t)producer << BENCH_SEQ_BITS) | (uintptr_t)seq);
}
static inline unsigned bench_msg_producer(const void *m)
{
    return (unsigned)((uintptr_t)m >> BENCH_SEQ_BITS);
}
static inline uint64_t bench_msg_seq(const void *m)
{
    return (uint64_t)((uintptr_t)m & (((uintptr_t)1 << BENCH_SEQ_BITS) - 1));
}

struct bench_verify {
    unsigned producers;
    uint64_t *next;        /* next sequence number expected per producer */
    uint64_t received;     /* messages seen */
    uint64_t out_of_order; /* seq != next: a loss, duplicate or reorder */
    uint64_t foreign;      /* producer id out of range */
    uint64_t lost;         /* set by bench_verify_finish */
    uint64_t duplicated;   /* set by bench_verify_finish */
    char first_error[160];
};

int bench_verify_init(struct bench_verify *v, unsigned producers);
void bench_verify_free(struct bench_verify *v);

/* The slow path of bench_verify_msg: counts and describes an error. */
int bench_verify_error(struct bench_verify *v, unsigned id, uint64_t seq);

/* Records one delivered message; returns 0 if it was the one expected. */
static inline int bench_verify_msg(struct bench_verify *v, const void *m)
{
    unsigned id = bench_msg_producer(m);
    uint64_t seq = bench_msg_seq(m);
    v->received++;
    if (id < v->producers && seq == v->next[id]) {
        v->next[id]++;
        return 0;
    }
    return bench_verify_error(v, id, seq);
}

/* After the run: sent[i] messages were sent by producer i.  Returns 1 if
 * everything sent arrived exactly once and in each producer's order. */
int bench_verify_finish(struct bench_verify *v, const uint64_t *sent);

/* One line describing the verdict ("ok: N messages, ..." or the errors). */
void bench_verify_describe(const struct bench_verify *v, char *buf, size_t len);

#endif
