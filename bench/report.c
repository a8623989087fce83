/*
 * report.c - prints mpscq-bench's results: a table on stdout, JSON, and
 * a gnuplot SVG of throughput against producers.
 */
#include "config.h"
#include "report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mpscq.h>

static const char *const lat_names[5] = { "enqueue", "dequeue", "empty dequeue",
                                          "enqueue->dequeue", "full enqueue" };
static const char *const lat_keys[5] = { "enqueue", "dequeue", "empty_dequeue", "end_to_end",
                                         "full_enqueue" };

void bench_report_summarize(struct bench_report *rep)
{
    for (unsigned t = 0; t < rep->ntables; t++) {
        struct bench_table *tb = &rep->tables[t];
        for (unsigned i = 0; i < rep->nqueues * tb->ncols; i++) {
            struct bench_cell *c = &tb->cells[i];
            int n = c->runs;
            bench_summarize(c->mmsgs, n, &c->s_mmsgs);
            bench_summarize(c->cpu_ns, n, &c->s_cpu_ns);
            bench_summarize(c->cpu_pct, n, &c->s_cpu_pct);
            bench_summarize(c->ccpu_pct, n, &c->s_ccpu_pct);
            bench_summarize(c->bytes, n, &c->s_bytes);
            bench_summarize(c->rss_before, n, &c->s_rss_before);
            bench_summarize(c->rss_peak, n, &c->s_rss_peak);
            bench_summarize(c->rss_after, n, &c->s_rss_after);
            bench_summarize(c->drain, n, &c->s_drain);
            for (int k = 0; k < 5; k++) {
                bench_summarize(c->lat[k][0], n, &c->s_lat[k].p50);
                bench_summarize(c->lat[k][1], n, &c->s_lat[k].p99);
                bench_summarize(c->lat[k][2], n, &c->s_lat[k].p999);
                bench_summarize(c->lat[k][3], n, &c->s_lat[k].max);
            }
        }
    }
}

void bench_report_free(struct bench_report *rep)
{
    for (unsigned t = 0; t < rep->ntables; t++) {
        struct bench_table *tb = &rep->tables[t];
        for (unsigned i = 0; tb->cells && i < rep->nqueues * tb->ncols; i++) {
            struct bench_cell *c = &tb->cells[i];
            double **all[] = { &c->mmsgs, &c->cpu_ns, &c->cpu_pct, &c->ccpu_pct, &c->bytes, &c->rss_before,
                               &c->rss_peak, &c->rss_after, &c->drain };
            for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) {
                free(*all[k]);
                *all[k] = NULL;
            }
            for (int k = 0; k < 5; k++)
                for (int m = 0; m < 4; m++) {
                    free(c->lat[k][m]);
                    c->lat[k][m] = NULL;
                }
        }
        free(tb->cells);
        free((char *)tb->title);
        tb->cells = NULL;
        tb->title = NULL;
    }
    rep->ntables = 0;
}

static const struct bench_cell *cell(const struct bench_table *tb, unsigned q, unsigned col)
{
    return &tb->cells[q * tb->ncols + col];
}

/* A cell a ratio may be taken against: it ran, every run was verified,
 * and it did not stall. */
static int usable(const struct bench_cell *c)
{
    return !c->skipped && !c->stalled && c->runs > 0 && c->failures == 0;
}

static void col_label(const struct bench_table *tb, const struct bench_cell *c, char *buf,
                      size_t len)
{
    if (tb->kind == KIND_THROUGHPUT)
        snprintf(buf, len, "%uP", c->producers);
    else if (c->rate >= 1e6)
        snprintf(buf, len, "%gM/s", c->rate / 1e6);
    else
        snprintf(buf, len, "%gk/s", c->rate / 1e3);
}

/* A throughput cell as printed: the median, and the min-max of the
 * repeats when there was more than one; stalled and failed runs are
 * flagged (and get no ratio: usable()). */
static void mmsgs_text(const struct bench_cell *c, char *v, size_t len)
{
    if (c->stalled && c->runs > 0 && !c->failures)
        snprintf(v, len, "STALLED %.1f", c->s_mmsgs.median);
    else if (c->stalled)
        snprintf(v, len, "STALLED");
    else if (c->skipped)
        snprintf(v, len, "n/a");
    else if (c->failures)
        snprintf(v, len, "FAILED");
    else if (c->runs > 1)
        snprintf(v, len, "%.1f (%.1f-%.1f)", c->s_mmsgs.median, c->s_mmsgs.min, c->s_mmsgs.max);
    else
        snprintf(v, len, "%.1f", c->s_mmsgs.median);
}

static void print_throughput(const struct bench_report *rep, const struct bench_table *tb,
                             FILE *out)
{
    /* Every row has the same columns: a name column as wide as the
     * longest name (a ratio's "libmpscq/<peer>" included), then value
     * columns as wide as the widest value. */
    int namew = (int)strlen("CPU ns per message"), colw = 6;
    char v[48], lab[32];
    for (unsigned q = 0; q < rep->nqueues; q++) {
        int w = (int)strlen("libmpscq/") + (int)strlen(rep->queues[q]->name);
        namew = w > namew ? w : namew;
        for (unsigned j = 0; j < tb->ncols; j++) {
            mmsgs_text(cell(tb, q, j), v, sizeof v);
            colw = (int)strlen(v) > colw ? (int)strlen(v) : colw;
        }
    }
    fprintf(out, "  %-*s", namew, "queue");
    for (unsigned j = 0; j < tb->ncols; j++) {
        col_label(tb, cell(tb, 0, j), lab, sizeof lab);
        fprintf(out, " %*s", colw, lab);
    }
    fputc('\n', out);
    for (unsigned q = 0; q < rep->nqueues; q++) {
        fprintf(out, "  %-*s", namew, rep->queues[q]->name);
        for (unsigned j = 0; j < tb->ncols; j++) {
            mmsgs_text(cell(tb, q, j), v, sizeof v);
            fprintf(out, " %*s", colw, v);
        }
        fputc('\n', out);
    }
    for (unsigned q = 1; q < rep->nqueues; q++) {
        char name[64];
        snprintf(name, sizeof name, "libmpscq/%s", rep->queues[q]->name);
        fprintf(out, "  %-*s", namew, name);
        for (unsigned j = 0; j < tb->ncols; j++) {
            const struct bench_cell *m = cell(tb, 0, j), *c = cell(tb, q, j);
            if (usable(m) && usable(c) && c->s_mmsgs.median > 0) {
                snprintf(v, sizeof v, "%.2fx", m->s_mmsgs.median / c->s_mmsgs.median);
                fprintf(out, " %*s", colw, v);
            } else {
                fprintf(out, " %*s", colw, "-");
            }
        }
        fputc('\n', out);
    }
    for (unsigned q = 0; q < rep->nqueues && !tb->capacity; q++)
        if (rep->queues[q]->flags & BENCH_PRESIZED)
            fprintf(out, "  (%s has no unbounded mode: a ring sized for every message of the run)\n",
                    rep->queues[q]->name);
    for (unsigned q = 0; q < rep->nqueues && tb->capacity; q++)
        if (rep->queues[q]->flags & BENCH_ROUNDED_CAPACITY)
            fprintf(out, "  (%s rounds its ring up to a power of two of at least 4096: more room "
                         "than the capacity)\n",
                    rep->queues[q]->name);
    fprintf(out, "  %s\n", "CPU ns per message");
    for (unsigned q = 0; q < rep->nqueues; q++) {
        fprintf(out, "    %-*s", namew - 2, rep->queues[q]->name);
        for (unsigned j = 0; j < tb->ncols; j++) {
            const struct bench_cell *c = cell(tb, q, j);
            if (usable(c))
                fprintf(out, " %*.0f", colw, c->s_cpu_ns.median);
            else
                fprintf(out, " %*s", colw, "-");
        }
        fputc('\n', out);
    }
}

static void print_latency(const struct bench_report *rep, const struct bench_table *tb,
                          FILE *out)
{
    static const int sleeping_rows[] = { LAT_ENQ, LAT_E2E, -1 };
    static const int latency_rows[] = { LAT_ENQ, LAT_DEQ, LAT_EMPTY, LAT_E2E, -1 };
    static const int burst_rows[] = { LAT_ENQ, -1 };
    static const int probe_rows[] = { LAT_FULL, LAT_EMPTY, -1 };
    const int *rows = tb->kind == KIND_SLEEPING ? sleeping_rows
                      : tb->kind == KIND_BURST  ? burst_rows
                      : tb->kind == KIND_PROBE  ? probe_rows
                                                : latency_rows;
    for (unsigned j = 0; j < tb->ncols; j++) {
        char lab[32];
        col_label(tb, cell(tb, 0, j), lab, sizeof lab);
        if (tb->kind != KIND_PROBE)
            fprintf(out, "  offered %s\n", lab);
        int range = rep->repeats > 1; /* min-max of the repeats' p99 */
        fprintf(out, "  %-14s %-17s %8s %19s %8s %9s", "queue", "ns", "p50",
                range ? "p99 (min-max)" : "p99", "p99.9", "max");
        if (tb->kind == KIND_LATENCY || tb->kind == KIND_SLEEPING)
            fprintf(out, " %9s %9s", "CPU %", "consumer");
        if (tb->kind == KIND_BURST)
            fprintf(out, " %9s %22s %8s", "bytes/msg", "RSS KiB before/peak/after", "drain");
        fputc('\n', out);
        for (unsigned q = 0; q < rep->nqueues; q++) {
            const struct bench_cell *c = cell(tb, q, j);
            if (!usable(c)) {
                fprintf(out, "  %-14s %s\n", rep->queues[q]->name,
                        c->skipped   ? c->skip_reason
                        : c->stalled ? c->stall_reason
                                     : "FAILED (see verdict)");
                continue;
            }
            for (int k = 0; rows[k] >= 0; k++) {
                const struct bench_pct_summary *s = &c->s_lat[rows[k]];
                char p99[40];
                if (range)
                    snprintf(p99, sizeof p99, "%.0f (%.0f-%.0f)", s->p99.median, s->p99.min,
                             s->p99.max);
                else
                    snprintf(p99, sizeof p99, "%.0f", s->p99.median);
                fprintf(out, "  %-14s %-17s %8.0f %19s %8.0f %9.0f",
                        k ? "" : rep->queues[q]->name, lat_names[rows[k]], s->p50.median, p99,
                        s->p999.median, s->max.median);
                if (k == 0 && (tb->kind == KIND_LATENCY || tb->kind == KIND_SLEEPING))
                    fprintf(out, " %8.1f%% %8.1f%%", c->s_cpu_pct.median, c->s_ccpu_pct.median);
                if (k == 0 && tb->kind == KIND_BURST) {
                    char rss[48];
                    snprintf(rss, sizeof rss, "%.0f/%.0f/%.0f", c->s_rss_before.median,
                             c->s_rss_peak.median, c->s_rss_after.median);
                    fprintf(out, " %9.1f %22s %6.1fM/s", c->s_bytes.median, rss,
                            c->s_drain.median);
                }
                fputc('\n', out);
            }
        }
    }
}

void bench_report_print(const struct bench_report *rep, FILE *out)
{
    for (unsigned t = 0; t < rep->ntables; t++) {
        const struct bench_table *tb = &rep->tables[t];
        fprintf(out, "\n%s\n", tb->title);
        if (tb->kind == KIND_THROUGHPUT)
            print_throughput(rep, tb, out);
        else
            print_latency(rep, tb, out);
    }
    fprintf(out, "\nDelivery:");
    int bad = 0;
    for (unsigned t = 0; t < rep->ntables; t++)
        for (unsigned i = 0; i < rep->nqueues * rep->tables[t].ncols; i++) {
            const struct bench_cell *c = &rep->tables[t].cells[i];
            if (c->failures) {
                fprintf(out, "\n  %s, %s: %d of %d runs FAILED: %s", rep->tables[t].id, c->a->name, c->failures, c->runs, c->verdict);
                bad = 1;
            }
        }
    if (!bad)
        fprintf(out, " every run verified: no loss, no duplicate, per-producer FIFO.");
    fputc('\n', out);
}

/* ---- JSON ------------------------------------------------------------ */

static void json_summary(FILE *f, const char *key, const struct bench_summary *s)
{
    fprintf(f, "\"%s\": {\"median\": %.6g, \"min\": %.6g, \"max\": %.6g}", key, s->median,
            s->min, s->max);
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

/* The machine and the software a run measured, for the JSON: CPU model,
 * kernel, compiler, libmpscq's version and hot-path implementation, and
 * the peers' versions where their headers say. */
static void json_host(FILE *f, const struct bench_report *rep)
{
    char model[256] = "unknown";
    FILE *ci = fopen("/proc/cpuinfo", "r");
    if (ci) {
        char line[512];
        while (fgets(line, sizeof line, ci)) {
            /* x86: "model name"; AArch64 and others: first of these. */
            if (!strncmp(line, "model name", 10) || !strncmp(line, "Model", 5) ||
                !strncmp(line, "cpu model", 9)) {
                char *v = strchr(line, ':');
                if (v) {
                    v += 1 + (v[1] == ' ');
                    v[strcspn(v, "\n")] = 0;
                    snprintf(model, sizeof model, "%s", v);
                    break;
                }
            }
        }
        fclose(ci);
    }
    struct utsname u;
    char kernel[200] = "unknown";
    if (uname(&u) == 0)
        snprintf(kernel, sizeof kernel, "%s %s %s", u.sysname, u.release, u.machine);
    fprintf(f, "  \"host\": {\"cpu_model\": ");
    json_string(f, model);
    fprintf(f, ", \"cpus_online\": %ld, \"kernel\": ", rep->cpus);
    json_string(f, kernel);
    fprintf(f, ",\n           \"compiler\": ");
#if defined(__clang__)
    json_string(f, "clang " __clang_version__);
#elif defined(__GNUC__)
    json_string(f, "gcc " __VERSION__);
#else
    json_string(f, "unknown");
#endif
    fprintf(f, ",\n           \"libmpscq\": {\"version\": ");
    json_string(f, mpscq_version());
    fprintf(f, ", \"header\": \"%s\", \"implementation\": ", MPSCQ_VERSION_STRING);
    json_string(f, mpscq_implementation());
    fprintf(f, "},\n           \"peers\": {");
    /* The versions pkg-config reported at configure time. */
    static const char *const peers[][2] = {
#ifdef PEER_URCU_VERSION
        { "liburcu", PEER_URCU_VERSION },
#endif
#ifdef PEER_CK_VERSION
        { "ck", PEER_CK_VERSION },
#endif
#ifdef PEER_DPDK_VERSION
        { "dpdk", PEER_DPDK_VERSION },
#endif
        { NULL, NULL }
    };
    for (size_t i = 0; peers[i][0]; i++) {
        fprintf(f, "%s\"%s\": ", i ? ", " : "", peers[i][0]);
        json_string(f, peers[i][1]);
    }
    fprintf(f, "}},\n");
}

static const char *const kind_names[] = { "throughput", "latency", "sleeping-consumer",
                                          "burst", "probe" };

int bench_report_json(const struct bench_report *rep, const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "{\n  \"tool\": \"mpscq-bench\",\n  \"version\": \"%s\",\n", PACKAGE_VERSION);
    fprintf(f, "  \"implementation\": \"%s\",\n  \"clock\": \"%s\",\n  \"ns_per_tick\": %.6g,\n",
            rep->implementation, rep->clock, rep->ns_per_tick);
    /* null: not measured (coherence.h says when). */
    fprintf(f, "  \"line_round_trip_ns\": {\"before\": ");
    if (rep->line_rt_before >= 0)
        fprintf(f, "%.1f", rep->line_rt_before);
    else
        fprintf(f, "null");
    fprintf(f, ", \"after\": ");
    if (rep->line_rt_after >= 0)
        fprintf(f, "%.1f", rep->line_rt_after);
    else
        fprintf(f, "null");
    fprintf(f, "},\n");
    fprintf(f, "  \"cpus\": %ld,\n  \"repeats\": %d,\n  \"started\": \"%s\",\n", rep->cpus,
            rep->repeats, rep->started);
    json_host(f, rep);
    fprintf(f, "  \"queues\": [");
    for (unsigned q = 0; q < rep->nqueues; q++) {
        fprintf(f, "%s\n    {\"name\": ", q ? "," : "");
        json_string(f, rep->queues[q]->name);
        fprintf(f, ", \"measures\": ");
        json_string(f, rep->queues[q]->describe);
        fputc('}', f);
    }
    fprintf(f, "\n  ],\n  \"tables\": [");
    for (unsigned t = 0; t < rep->ntables; t++) {
        const struct bench_table *tb = &rep->tables[t];
        fprintf(f, "%s\n    {\"id\": \"%s\", \"kind\": \"%s\", \"title\": ", t ? "," : "",
                tb->id, kind_names[tb->kind]);
        json_string(f, tb->title);
        fprintf(f, ", \"capacity\": %zu, \"batch\": %u, \"messages\": %llu, \"seconds\": %g,\n"
                   "     \"results\": [",
                tb->capacity, tb->batch, (unsigned long long)tb->messages, tb->seconds);
        for (unsigned i = 0; i < rep->nqueues * tb->ncols; i++) {
            const struct bench_cell *c = &tb->cells[i];
            fprintf(f, "%s\n      {\"queue\": \"%s\", \"producers\": %u, \"rate\": %g, ",
                    i ? "," : "", c->a->name, c->producers, c->rate);
            if (c->skipped) {
                fprintf(f, "\"stalled\": %s, \"skipped\": ", c->stalled ? "true" : "false");
                json_string(f, c->skip_reason);
                fputc('}', f);
                continue;
            }
            fprintf(f, "\"runs\": %d, \"verified\": %s, \"stalled\": %s, \"verdict\": ",
                    c->runs, c->failures ? "false" : "true", c->stalled ? "true" : "false");
            json_string(f, c->verdict);
            fprintf(f, ",\n       ");
            json_summary(f, "mmsgs_per_s", &c->s_mmsgs);
            fprintf(f, ", ");
            json_summary(f, "cpu_ns_per_msg", &c->s_cpu_ns);
            fprintf(f, ",\n       ");
            json_summary(f, "cpu_percent", &c->s_cpu_pct);
            fprintf(f, ", ");
            json_summary(f, "consumer_cpu_percent", &c->s_ccpu_pct);
            if (tb->kind == KIND_BURST) {
                fprintf(f, ",\n       ");
                json_summary(f, "bytes_per_msg", &c->s_bytes);
                fprintf(f, ", ");
                json_summary(f, "drain_mmsgs_per_s", &c->s_drain);
                fprintf(f, ",\n       ");
                json_summary(f, "rss_kib_before", &c->s_rss_before);
                fprintf(f, ", ");
                json_summary(f, "rss_kib_peak", &c->s_rss_peak);
                fprintf(f, ", ");
                json_summary(f, "rss_kib_after_drain", &c->s_rss_after);
            }
            if (tb->kind != KIND_THROUGHPUT) {
                fprintf(f, ",\n       \"latency_ns\": {");
                int first = 1;
                for (int k = 0; k < 5; k++) {
                    if (c->s_lat[k].max.median == 0 && c->s_lat[k].p50.median == 0)
                        continue;
                    fprintf(f, "%s\n         \"%s\": {", first ? "" : ",", lat_keys[k]);
                    json_summary(f, "p50", &c->s_lat[k].p50);
                    fprintf(f, ", ");
                    json_summary(f, "p99", &c->s_lat[k].p99);
                    fprintf(f, ",\n           ");
                    json_summary(f, "p99.9", &c->s_lat[k].p999);
                    fprintf(f, ", ");
                    json_summary(f, "max", &c->s_lat[k].max);
                    fputc('}', f);
                    first = 0;
                }
                fputc('}', f);
            }
            fputc('}', f);
        }
        fprintf(f, "\n     ]}");
    }
    fprintf(f, "\n  ]\n}\n");
    int err = ferror(f);
    if (f != stdout)
        err |= fclose(f) != 0;
    else
        fflush(f);
    return err ? -1 : 0;
}

/* ---- gnuplot --------------------------------------------------------- */

int bench_report_can_plot(void)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/bin:/bin";
    while (*path) {
        const char *end = strchr(path, ':');
        size_t len = end ? (size_t)(end - path) : strlen(path);
        char file[4096];
        if (len + sizeof "/gnuplot" <= sizeof file) {
            memcpy(file, len ? path : ".", len ? len : 1);
            strcpy(file + (len ? len : 1), "/gnuplot");
            if (access(file, X_OK) == 0)
                return 1;
        }
        path += len + (end != NULL);
        if (!end)
            break;
    }
    return 0;
}

int bench_report_plot(const struct bench_report *rep, const char *path)
{
    unsigned n = 0;
    for (unsigned t = 0; t < rep->ntables; t++)
        n += rep->tables[t].kind == KIND_THROUGHPUT;
    if (n == 0) {
        fprintf(stderr, "mpscq-bench: --plot: no throughput table was run\n");
        return -1;
    }
    char script[] = "/tmp/mpscq-bench-plot-XXXXXX";
    int fd = mkstemp(script);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(script);
        return -1;
    }
    /* noenhanced: peer names such as ck_fifo_mpmc and rte_ring are
     * printed as they are, not as subscripts. */
    fprintf(f, "set terminal svg size %u,460 dynamic noenhanced font 'sans,11'\n", 520 * n);
    fprintf(f, "set output '%s'\n", path);
    char how[64];
    if (rep->repeats > 1)
        snprintf(how, sizeof how, "median and min-max of %d runs", rep->repeats);
    else
        snprintf(how, sizeof how, "one run");
    fprintf(f, "set multiplot layout 1,%u title 'mpscq-bench: throughput against producers "
               "(1 consumer, %ld CPUs, %s)'\n",
            n, rep->cpus, how);
    fprintf(f, "set xlabel 'producers'\nset ylabel 'million messages/s'\nset logscale x 2\n"
               "set grid\nset key top left\nset yrange [0:*]\n");
    for (unsigned t = 0; t < rep->ntables; t++) {
        const struct bench_table *tb = &rep->tables[t];
        if (tb->kind != KIND_THROUGHPUT)
            continue;
        unsigned lo = tb->cells[0].producers, hi = tb->cells[tb->ncols - 1].producers;
        fprintf(f, "set xrange [%g:%g]\n", lo / 1.5, hi * 1.5);
        for (unsigned q = 0; q < rep->nqueues; q++) {
            fprintf(f, "$d%u_%u << EOD\n", t, q);
            for (unsigned j = 0; j < tb->ncols; j++) {
                const struct bench_cell *c = cell(tb, q, j);
                if (usable(c))
                    fprintf(f, "%u %g %g %g\n", c->producers, c->s_mmsgs.median,
                            c->s_mmsgs.min, c->s_mmsgs.max);
            }
            fprintf(f, "EOD\n");
        }
        /* The panel's title in words. */
        if (tb->batch)
            fprintf(f, "set title 'Batches of %u, unbounded'\nplot ", tb->batch);
        else if (tb->capacity)
            fprintf(f, "set title 'Bounded, capacity %zu'\nplot ", tb->capacity);
        else
            fprintf(f, "set title 'Unbounded, single messages'\nplot ");
        int first = 1;
        for (unsigned q = 0; q < rep->nqueues; q++) {
            int points = 0; /* a queue with none (n/a, stalled) is left out */
            for (unsigned j = 0; j < tb->ncols; j++)
                points += usable(cell(tb, q, j));
            if (!points)
                continue;
            fprintf(f, "%s$d%u_%u using 1:2%s lw 2 title '%s'", first ? "" : ", ", t, q,
                    rep->repeats > 1 ? ":3:4 with yerrorlines" : " with linespoints",
                    rep->queues[q]->name);
            first = 0;
        }
        fputc('\n', f);
    }
    fprintf(f, "unset multiplot\n");
    int err = ferror(f);
    err |= fclose(f) != 0;
    int rc = -1;
    if (!err) {
        pid_t pid = fork();
        if (pid == 0) {
            execlp("gnuplot", "gnuplot", script, (char *)NULL);
            fprintf(stderr, "mpscq-bench: --plot needs gnuplot (Debian: gnuplot-nox): %s\n",
                    strerror(errno));
            _exit(127);
        }
        int st;
        if (pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0)
            rc = 0;
    }
    unlink(script);
    return rc;
}
