/*
 * many-drain.c - what the consumers of one many-consumer queue cost each
 * other: 8 producers enqueue N messages and close the queue; then C
 * consumer threads drain it together, each working WORK_NS on every
 * message it takes (a clock-read loop; 0: a tight loop, where consumers
 * share the most lines; 1000 or more: a worker pool).  Prints the
 * drain's rate, ns per message (wall) and the claims lost to another
 * consumer (mpscq_stats), for 3 rounds.  make bench-micro runs it.
 *   bench/many-drain [C [WORK_NS [N]]]   (defaults 4, 0, 1000000)
 */
#define _GNU_SOURCE
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "mpscq.h"
#include "clock.h"

#define PRODUCERS 8

static mpscq_t *q;
static uint64_t per, work_ns;

static void *producer(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    for (uint64_t s = 0; s < per; s++)
        if (mpscq_enqueue(q, (void *)(id << 40 | s)) != MPSCQ_OK)
            abort();
    return NULL;
}

static void *consumer(void *arg)
{
    unsigned long *got = arg;
    void *m;
    int rc;
    while ((rc = mpscq_dequeue(q, &m)) != MPSCQ_CLOSED) {
        if (rc != MPSCQ_OK)
            continue; /* EMPTY: a ticket of the run not written yet */
        ++*got;
        if (work_ns)
            for (uint64_t end = bench_now_ns() + work_ns; bench_now_ns() < end;)
                ;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned c = argc > 1 ? (unsigned)atoi(argv[1]) : 4;
    work_ns = argc > 2 ? strtoull(argv[2], NULL, 10) : 0;
    uint64_t n = argc > 3 ? strtoull(argv[3], NULL, 10) : 1000000;
    per = n / PRODUCERS;
    if (c < 1 || c > 64 || per < 1) {
        fprintf(stderr, "usage: %s [C (1-64) [WORK_NS [N >= 8]]]\n", argv[0]);
        return 2;
    }
    bench_clock_init();
    for (int round = 0; round < 3; round++) {
        mpscq_config cfg;
        mpscq_config_init(&cfg);
        cfg.consumers = MPSCQ_CONSUMERS_MANY;
        if (mpscq_create(&q, &cfg) != MPSCQ_OK)
            return 3;
        pthread_t th[64];
        unsigned long got[64] = { 0 };
        for (uintptr_t i = 0; i < PRODUCERS; i++)
            if (pthread_create(&th[i], NULL, producer, (void *)i) != 0)
                return 3;
        for (unsigned i = 0; i < PRODUCERS; i++)
            pthread_join(th[i], NULL);
        mpscq_close(q);
        uint64_t t0 = bench_now_ns();
        for (unsigned i = 0; i < c; i++)
            if (pthread_create(&th[i], NULL, consumer, &got[i]) != 0)
                return 3;
        unsigned long all = 0;
        for (unsigned i = 0; i < c; i++) {
            pthread_join(th[i], NULL);
            all += got[i];
        }
        double ns = (double)(bench_now_ns() - t0);
        struct mpscq_stats st;
        mpscq_stats(q, &st);
        mpscq_destroy(q, NULL, NULL);
        if (all != per * PRODUCERS) {
            fprintf(stderr, "many-drain: %lu messages taken of %llu\n", all,
                    (unsigned long long)(per * PRODUCERS));
            return 1;
        }
        printf("%u consumers, work %llu ns: %.1f M msg/s, %.1f ns per message, "
               "%llu claims lost\n",
               c, (unsigned long long)work_ns, (double)all / ns * 1e3, ns / (double)all,
               st.cas_failures);
    }
    return 0;
}
