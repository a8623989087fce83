/*
 * report.h - mpscq-bench's results and their three outputs: the table
 * on stdout, JSON and a gnuplot SVG.
 */
#ifndef MPSCQ_BENCH_REPORT_H
#define MPSCQ_BENCH_REPORT_H

#include <stdio.h>

#include "adapter.h"
#include "stats.h"

enum bench_kind { KIND_THROUGHPUT, KIND_LATENCY, KIND_SLEEPING, KIND_BURST, KIND_PROBE };

struct bench_pct_summary {
    struct bench_summary p50, p99, p999, max;
};

/* One (workload, queue, producers or rate) cell, over all repeats. */
struct bench_cell {
    const struct bench_adapter *a;
    unsigned producers;
    double rate;                  /* latency/sleeping/burst: offered msg/s */
    int runs, failures;
    char verdict[320];            /* the first failure, or the last success */
    double *mmsgs, *cpu_ns, *cpu_pct, *ccpu_pct, *bytes, *rss_before, *rss_peak, *rss_after,
        *drain;
    double *lat[5][4];            /* [enq,deq,empty,e2e,full][p50,p99,p999,max] */
    struct bench_summary s_mmsgs, s_cpu_ns, s_cpu_pct, s_ccpu_pct, s_bytes, s_rss_before,
        s_rss_peak, s_rss_after, s_drain;
    struct bench_pct_summary s_lat[5];
    int skipped;                  /* the queue cannot do this workload */
    const char *skip_reason;
    int stalled;                  /* a run was killed at its deadline */
    char stall_reason[128];
};

enum { LAT_ENQ, LAT_DEQ, LAT_EMPTY, LAT_E2E, LAT_FULL };

struct bench_table {
    const char *id;               /* JSON key, e.g. "throughput-unbounded" */
    const char *title;
    enum bench_kind kind;
    size_t capacity;
    unsigned batch;
    unsigned consumers;           /* > 1: the "consumers" workload */
    uint64_t messages;
    double seconds;
    unsigned ncols;               /* producer counts or rates */
    struct bench_cell *cells;     /* [queue * ncols + col] */
};

struct bench_report {
    const char *implementation;
    const char *clock;
    double ns_per_tick;
    double line_rt_before, line_rt_after; /* coherence.h: ns, -1 = not measured */
    long cpus;
    int repeats;
    unsigned nqueues;
    const struct bench_adapter **queues;
    unsigned ntables;
    struct bench_table *tables;
    char started[32];
};

void bench_report_summarize(struct bench_report *rep);
/* Frees every table's cells (not rep itself). */
void bench_report_free(struct bench_report *rep);
void bench_report_print(const struct bench_report *rep, FILE *out);
int bench_report_json(const struct bench_report *rep, const char *path);
int bench_report_plot(const struct bench_report *rep, const char *path);
/* 1 when gnuplot is on PATH (mpscq-bench --plot checks before it runs). */
int bench_report_can_plot(void);

#endif
