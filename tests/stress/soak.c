/*
 * soak.c - `make soak DURATION=seconds [RATE=msg/s]`: 8 producers and one
 * consumer (sleeping in mpscq_dequeue_wait) at a steady offered rate,
 * sampling the resident set every 2 seconds.  Fails if any message is
 * lost, duplicated or reordered per producer, or if RSS after the warm-up
 * (the first quarter of the run, at least 5 s) ever exceeds the post-
 * warm-up baseline by more than 5 %.
 *   soak DURATION [RATE]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "mpscq.h"

#define P 8

static mpscq_t *q;
static _Atomic int stop;
static double rate;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long rss_kib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static uint64_t sent[P];

static void *producer(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    double interval = 1e9 * P / rate;
    uint64_t t0 = now_ns(), i = 0;
    while (!atomic_load(&stop)) {
        uint64_t due = t0 + (uint64_t)(interval * (double)i);
        uint64_t now = now_ns();
        if (now < due) {
            struct timespec ts = { 0, (long)(due - now) };
            nanosleep(&ts, NULL); /* pacing the offered rate */
            continue;
        }
        if (mpscq_enqueue(q, (void *)(((uintptr_t)id << 48) | (uintptr_t)i)) != MPSCQ_OK)
            return (void *)1;
        i++;
    }
    sent[id] = i;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DURATION_SECONDS [RATE]\n", argv[0]);
        return 2;
    }
    double duration = atof(argv[1]);
    rate = argc > 2 ? atof(argv[2]) : 100000;
    if (duration < 10 || rate < P) {
        fprintf(stderr, "soak: DURATION >= 10 s and RATE >= %d msg/s\n", P);
        return 2;
    }
    double warmup = duration / 4 < 5 ? 5 : duration / 4;
    if (mpscq_create(&q, NULL) != MPSCQ_OK)
        return 1;
    pthread_t th[P];
    for (uintptr_t p = 0; p < P; p++)
        pthread_create(&th[p], NULL, producer, (void *)p);
    uint64_t next[P] = { 0 }, got = 0, errors = 0;
    uint64_t t0 = now_ns(), last_sample = t0;
    long baseline = -1, worst = 0;
    int samples = 0;
    for (;;) {
        void *m;
        int rc = mpscq_dequeue_wait(q, &m, 100000000);
        uint64_t now = now_ns();
        if (rc == MPSCQ_OK) {
            uintptr_t v = (uintptr_t)m;
            unsigned p = (unsigned)(v >> 48);
            if (p >= P || (v & 0xffffffffffffu) != next[p])
                errors++;
            else
                next[p]++;
            got++;
        } else if (rc == MPSCQ_CLOSED) {
            break;
        }
        if (now - last_sample >= 2000000000u) {
            last_sample = now;
            double t = (double)(now - t0) / 1e9;
            long rss = rss_kib();
            samples++;
            if (t >= warmup) {
                if (baseline < 0)
                    baseline = rss;
                if (rss > worst)
                    worst = rss;
            }
            fprintf(stderr, "soak: %5.0f s  %10llu messages  RSS %ld KiB  queue %zu\n", t,
                    (unsigned long long)got, rss, mpscq_size(q));
            if (t >= duration && !atomic_load(&stop)) {
                atomic_store(&stop, 1);
                for (int p = 0; p < P; p++)
                    pthread_join(th[p], NULL);
                mpscq_close(q); /* drain what is left, then CLOSED */
            }
        }
    }
    uint64_t total = 0;
    for (int p = 0; p < P; p++) {
        total += sent[p];
        if (next[p] != sent[p])
            errors++;
    }
    double drift = baseline > 0 ? 100.0 * (double)(worst - baseline) / (double)baseline : 0;
    struct mpscq_stats st;
    mpscq_stats(q, &st);
    mpscq_destroy(q, NULL, NULL);
    int rss_bad = drift > 5.0;
    printf("soak: %.0f s at %.0f msg/s: %llu messages sent, %llu received, %llu errors; "
           "RSS baseline %ld KiB, max %ld KiB (drift %.1f %%), %d samples, %llu consumer sleeps, "
           "%llu naps%s\n",
           duration, rate, (unsigned long long)total, (unsigned long long)got,
           (unsigned long long)errors, baseline, worst, drift, samples,
           st.consumer_parks, st.consumer_naps, rss_bad ? "  RSS DRIFT > 5 %" : "");
    return errors || rss_bad || got != total ? 1 : 0;
}
