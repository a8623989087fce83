/*
 * nap-cost.c - what the sleeping consumer's naps cost it: 8 producers at
 * RATE messages a second in all (each sleeping until its next send), the
 * consumer in mpscq_dequeue_wait for 1 s; prints the consumer thread's
 * CPU (user + system, getrusage), its naps (mpscq_stats) and CPU per
 * nap.  make bench-micro runs it at the default nap and at 200 us.
 *   bench/nap-cost [RATE [NAP_NS]]   (defaults 100000 and the library's)
 */
#define _GNU_SOURCE
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "mpscq.h"
#include "clock.h"

static mpscq_t *q;
static long rate = 100000;
static atomic_int stop;

static double tv(struct timeval t)
{
    return (double)t.tv_sec + (double)t.tv_usec * 1e-6;
}

static void *producer(void *arg)
{
    uint64_t gap = 1000000000u / (uint64_t)(rate / 8), due = bench_now_ns();
    /* Relaxed: a flag that only ends the loop; nothing is read after it. */
    for (uintptr_t i = 1; !atomic_load_explicit(&stop, memory_order_relaxed); i++) {
        bench_sleep_until_ns(due += gap);
        if (mpscq_enqueue(q, (void *)i) != MPSCQ_OK)
            abort();
    }
    return arg;
}

int main(int argc, char **argv)
{
    mpscq_config c;
    mpscq_config_init(&c);
    if (argc > 1)
        rate = atol(argv[1]);
    if (argc > 2)
        c.nap_ns = strtoull(argv[2], NULL, 10);
    if (rate < 8 || mpscq_create(&q, &c) != MPSCQ_OK) {
        fprintf(stderr, "usage: %s [RATE >= 8 [NAP_NS]]\n", argv[0]);
        return 2;
    }
    pthread_t th[8];
    for (int i = 0; i < 8; i++)
        if (pthread_create(&th[i], NULL, producer, NULL) != 0)
            return 3;
    void *m;
    mpscq_dequeue_wait(q, &m, 1000000); /* the first nap lowers the timer slack */
    struct rusage r0, r1;
    struct mpscq_stats s0, s1;
    getrusage(RUSAGE_THREAD, &r0);
    mpscq_stats(q, &s0);
    uint64_t t0 = bench_now_ns(), t1;
    unsigned long got = 0;
    do {
        if (mpscq_dequeue_wait(q, &m, 10000000) == MPSCQ_OK)
            got++;
    } while ((t1 = bench_now_ns()) - t0 < 1000000000u);
    getrusage(RUSAGE_THREAD, &r1);
    mpscq_stats(q, &s1);
    /* Relaxed: as the producers' load; the joins below order the rest. */
    atomic_store_explicit(&stop, 1, memory_order_relaxed);
    double s = (double)(t1 - t0) * 1e-9;
    double cpu = tv(r1.ru_utime) - tv(r0.ru_utime) + tv(r1.ru_stime) - tv(r0.ru_stime);
    double sys = tv(r1.ru_stime) - tv(r0.ru_stime);
    unsigned long long naps = s1.consumer_naps - s0.consumer_naps;
    printf("nap %llu ns, %ld msg/s: %lu messages, consumer CPU %.1f %% (system %.1f %%), "
           "%.0f naps/s, %.1f us of CPU per nap\n",
           c.nap_ns ? (unsigned long long)c.nap_ns : (unsigned long long)MPSCQ_NAP_DEFAULT_NS, rate,
           got, cpu / s * 100, sys / s * 100, (double)naps / s,
           naps ? cpu / (double)naps * 1e6 : 0.0);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    while (mpscq_dequeue(q, &m) == MPSCQ_OK)
        ;
    mpscq_destroy(q, NULL, NULL);
    return 0;
}
