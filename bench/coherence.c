/*
 * coherence.c - the cache line round trip between two CPUs (coherence.h).
 */
#define _GNU_SOURCE
#include "config.h"

#include "coherence.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "clock.h"
#include "stats.h"

#define TRIALS 5
#define ROUNDS 20000u                 /* round trips per trial */
#define TRIAL_LIMIT_NS 200000000ull   /* give up on a trial after 0.2 s */

struct ball {
    /* The line passed back and forth: odd values from the starter, even
     * ones from the partner.  Alone on its line. */
    _Alignas(64) _Atomic uint64_t v;
    char pad[64 - sizeof(uint64_t)];
    _Atomic int abandon;              /* the starter gave up: stop */
    int cpu;                          /* the partner's CPU */
    int pinned;                       /* 1: the partner pinned itself */
};

static int pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

/* Waits until b->v == want; 0 when the deadline passed first. */
static int await(struct ball *b, uint64_t want, uint64_t deadline)
{
    for (unsigned spins = 1;; spins++) {
        /* Acquire: pairs with the other side's release store. */
        if (atomic_load_explicit(&b->v, memory_order_acquire) == want)
            return 1;
        /* Relaxed: a flag with no data behind it. */
        if ((spins & 1023) == 0 &&
            (atomic_load_explicit(&b->abandon, memory_order_relaxed) || bench_now_ns() > deadline))
            return 0;
    }
}

static void *partner(void *arg)
{
    struct ball *b = arg;
    b->pinned = pin(b->cpu);
    uint64_t deadline = bench_now_ns() + TRIALS * TRIAL_LIMIT_NS + TRIAL_LIMIT_NS;
    for (uint64_t i = 0;; i++) {
        if (!await(b, 2 * i + 1, deadline))
            return NULL;
        /* Release: the answer; nothing else is published. */
        atomic_store_explicit(&b->v, 2 * i + 2, memory_order_release);
    }
}

double bench_line_round_trip_ns(void)
{
    cpu_set_t mine;
    if (sched_getaffinity(0, sizeof mine, &mine) != 0 || CPU_COUNT(&mine) < 2)
        return -1;
    int cpus[2], n = 0;
    for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
        if (CPU_ISSET(c, &mine))
            cpus[n++] = c;

    double result = -1;
    struct ball *b = aligned_alloc(64, sizeof *b);
    pthread_t th;
    if (!b)
        return -1;
    atomic_init(&b->v, 0);
    atomic_init(&b->abandon, 0);
    b->cpu = cpus[1];
    b->pinned = 0;
    /* The caller's own thread is pinned for the trials, then given back
     * the set it had. */
    if (!pin(cpus[0]) || pthread_create(&th, NULL, partner, b) != 0) {
        sched_setaffinity(0, sizeof mine, &mine);
        free(b);
        return -1;
    }
    double trial[TRIALS];
    int ok = 1;
    uint64_t round = 0;
    for (int t = 0; t < TRIALS && ok; t++) {
        uint64_t t0 = bench_now_ns(), deadline = t0 + TRIAL_LIMIT_NS;
        for (unsigned i = 0; i < ROUNDS; i++, round++) {
            /* Release: the serve; the partner's acquire load sees it. */
            atomic_store_explicit(&b->v, 2 * round + 1, memory_order_release);
            if (!await(b, 2 * round + 2, deadline)) {
                ok = 0;
                break;
            }
        }
        trial[t] = (double)(bench_now_ns() - t0) / ROUNDS;
    }
    /* Relaxed: the partner polls it; joining orders the rest. */
    atomic_store_explicit(&b->abandon, 1, memory_order_relaxed);
    pthread_join(th, NULL);
    sched_setaffinity(0, sizeof mine, &mine);
    if (ok && b->pinned) {
        struct bench_summary s;
        bench_summarize(trial, TRIALS, &s);
        result = s.median;
    }
    free(b);
    return result;
}
