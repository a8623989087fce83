/* workers.c - a worker pool: 8 producers feed 4 consumer threads through
 * one bounded queue in the many-consumer mode (MPSCQ_CONSUMERS_MANY).
 * Producers block in mpscq_enqueue_wait while the queue is full
 * (backpressure); workers sleep in mpscq_dequeue_wait when it is empty.
 * When every producer is done the queue is closed, and the workers drain
 * it until they see CLOSED (graceful shutdown: nothing queued is lost).
 *   examples/workers [MESSAGES_PER_PRODUCER]
 * Prints, as JSON, the rate, the enqueue-to-dequeue latency (p50, p95)
 * and each worker's count; checks that every message arrived exactly
 * once and that each worker saw each producer's messages in order. */
#include <mpscq.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { PRODUCERS = 8, WORKERS = 4, CAPACITY = 1024 };
static mpscq_t *q;
static unsigned long per; /* messages per producer */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct msg {
    unsigned producer;
    unsigned long seq;
    uint64_t sent;
};

static void *producer(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    for (unsigned long i = 0; i < per; i++) {
        struct msg *m = malloc(sizeof *m);
        if (!m)
            abort();
        *m = (struct msg){ id, i, now_ns() };
        if (mpscq_enqueue_wait(q, m, -1) != MPSCQ_OK)
            abort();
    }
    return NULL;
}

struct worker {
    unsigned long got;
    uint64_t *lat;          /* room for every message */
    long last[PRODUCERS];   /* last sequence seen of each producer */
    unsigned char *seen;    /* shared: [producer * per + seq] */
    int bad;
};

static void *worker(void *arg)
{
    struct worker *w = arg;
    for (unsigned p = 0; p < PRODUCERS; p++)
        w->last[p] = -1;
    for (;;) {
        void *p;
        int rc = mpscq_dequeue_wait(q, &p, -1);
        if (rc == MPSCQ_CLOSED)
            return NULL;
        if (rc != MPSCQ_OK) {
            fprintf(stderr, "workers: %s\n", mpscq_strerror(rc));
            w->bad = 1;
            return NULL;
        }
        struct msg *m = p;
        uint64_t lat = now_ns() - m->sent;
        if (m->producer >= PRODUCERS || m->seq >= per || (long)m->seq <= w->last[m->producer] ||
            __atomic_exchange_n(&w->seen[m->producer * per + m->seq], 1, __ATOMIC_RELAXED))
            w->bad = 1;
        else
            w->last[m->producer] = (long)m->seq;
        w->lat[w->got++] = lat;
        free(m);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    per = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    if (!per)
        per = 1;
    mpscq_config cfg;
    mpscq_config_init(&cfg);
    cfg.capacity = CAPACITY;
    cfg.consumers = MPSCQ_CONSUMERS_MANY;
    if (mpscq_create(&q, &cfg) != MPSCQ_OK)
        return 1;
    unsigned char *seen = calloc(PRODUCERS * per, 1);
    struct worker w[WORKERS];
    memset(w, 0, sizeof w);
    for (unsigned i = 0; i < WORKERS; i++) {
        w[i].seen = seen;
        if (!seen || !(w[i].lat = malloc(PRODUCERS * per * sizeof *w[i].lat)))
            return 1;
    }
    uint64_t t0 = now_ns();
    pthread_t wt[WORKERS], pt[PRODUCERS];
    for (unsigned i = 0; i < WORKERS; i++)
        pthread_create(&wt[i], NULL, worker, &w[i]);
    for (uintptr_t i = 0; i < PRODUCERS; i++)
        pthread_create(&pt[i], NULL, producer, (void *)i);
    for (unsigned i = 0; i < PRODUCERS; i++)
        pthread_join(pt[i], NULL);
    /* Every producer is done: close; the workers drain what is queued
     * and then see CLOSED. */
    mpscq_close(q);
    for (unsigned i = 0; i < WORKERS; i++)
        pthread_join(wt[i], NULL);
    double secs = (double)(now_ns() - t0) / 1e9;

    unsigned long total = 0;
    int bad = 0;
    for (unsigned i = 0; i < WORKERS; i++) {
        total += w[i].got;
        bad |= w[i].bad;
    }
    uint64_t *all = malloc((total ? total : 1) * sizeof *all);
    if (!all)
        return 1;
    unsigned long k = 0;
    for (unsigned i = 0; i < WORKERS; i++) {
        memcpy(all + k, w[i].lat, w[i].got * sizeof *all);
        k += w[i].got;
    }
    qsort(all, total, sizeof *all, cmp_u64);
    if (total != PRODUCERS * per)
        bad = 1;
    printf("{\"producers\": %d, \"workers\": %d, \"capacity\": %d, \"messages\": %lu, "
           "\"seconds\": %.3f, \"msgs_per_sec\": %.0f, \"p50_us\": %.1f, \"p95_us\": %.1f, "
           "\"per_worker\": [",
           PRODUCERS, WORKERS, CAPACITY, total, secs, (double)total / secs,
           total ? (double)all[total / 2] / 1e3 : 0, total ? (double)all[total * 95 / 100] / 1e3 : 0);
    for (unsigned i = 0; i < WORKERS; i++)
        printf("%s%lu", i ? ", " : "", w[i].got);
    printf("], \"verified\": %s}\n", bad ? "false" : "true");
    for (unsigned i = 0; i < WORKERS; i++)
        free(w[i].lat);
    free(all);
    free(seen);
    mpscq_destroy(q, NULL, NULL);
    return bad;
}
