/* stats.c - percentiles, repeat summaries and delivery verification. */
#include "stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t quantile(const uint64_t *sorted, size_t n, double q)
{
    /* ceil(q * n) - 1, computed in integers for q = k / 1000. */
    uint64_t k = (uint64_t)(q * 1000.0 + 0.5);
    uint64_t rank = ((uint64_t)n * k + 999) / 1000;
    return sorted[rank ? rank - 1 : 0];
}

void bench_percentiles(uint64_t *v, size_t n, struct bench_pct *out)
{
    memset(out, 0, sizeof *out);
    if (n == 0)
        return;
    qsort(v, n, sizeof *v, cmp_u64);
    out->n = n;
    out->p50 = quantile(v, n, 0.5);
    out->p99 = quantile(v, n, 0.99);
    out->p999 = quantile(v, n, 0.999);
    out->max = v[n - 1];
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void bench_summarize(const double *v, int n, struct bench_summary *out)
{
    memset(out, 0, sizeof *out);
    if (n <= 0)
        return;
    double *s = malloc((size_t)n * sizeof *s);
    if (!s) {
        out->median = out->min = out->max = v[0];
        out->n = 1;
        return;
    }
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    out->n = n;
    out->min = s[0];
    out->max = s[n - 1];
    out->median = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    free(s);
}

int bench_verify_init(struct bench_verify *v, unsigned producers)
{
    memset(v, 0, sizeof *v);
    v->producers = producers;
    v->next = calloc(producers ? producers : 1, sizeof *v->next);
    return v->next ? 0 : -1;
}

void bench_verify_free(struct bench_verify *v)
{
    free(v->next);
    v->next = NULL;
}

int bench_verify_error(struct bench_verify *v, unsigned id, uint64_t seq)
{
    if (id >= v->producers) {
        v->foreign++;
        if (!v->first_error[0])
            snprintf(v->first_error, sizeof v->first_error,
                     "message from unknown producer %u (seq %llu)", id,
                     (unsigned long long)seq);
        return -1;
    }
    v->out_of_order++;
    if (!v->first_error[0])
        snprintf(v->first_error, sizeof v->first_error,
                 "producer %u: got seq %llu, expected %llu", id,
                 (unsigned long long)seq, (unsigned long long)v->next[id]);
    /* Resynchronise on the message seen: a single reorder then costs
     * one error, not one per following message. */
    if (seq >= v->next[id])
        v->next[id] = seq + 1;
    return -1;
}

int bench_verify_finish(struct bench_verify *v, const uint64_t *sent)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < v->producers; i++) {
        total += sent[i];
        if (v->next[i] < sent[i] && !v->first_error[0])
            snprintf(v->first_error, sizeof v->first_error,
                     "producer %u: %llu of %llu messages arrived", i,
                     (unsigned long long)v->next[i], (unsigned long long)sent[i]);
    }
    v->lost = v->received < total ? total - v->received : 0;
    v->duplicated = v->received > total ? v->received - total : 0;
    int ok = v->received == total && !v->out_of_order && !v->foreign;
    for (unsigned i = 0; ok && i < v->producers; i++)
        ok = v->next[i] == sent[i];
    return ok;
}

void bench_verify_describe(const struct bench_verify *v, char *buf, size_t len)
{
    if (!v->first_error[0] && !v->lost && !v->duplicated)
        snprintf(buf, len, "ok: %llu messages, no loss, no duplicate, per-producer FIFO",
                 (unsigned long long)v->received);
    else
        snprintf(buf, len,
                 "FAILED: %llu received, %llu lost, %llu duplicated, %llu out of order, "
                 "%llu foreign; first: %s",
                 (unsigned long long)v->received, (unsigned long long)v->lost,
                 (unsigned long long)v->duplicated, (unsigned long long)v->out_of_order,
                 (unsigned long long)v->foreign, v->first_error);
}
