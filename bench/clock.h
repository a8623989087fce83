/*
 * clock.h - mpscq-bench time source: the TSC where it is invariant
 * (calibrated against CLOCK_MONOTONIC at start-up), CLOCK_MONOTONIC
 * elsewhere.  Latencies are taken in ticks and converted once, at the end.
 */
#ifndef MPSCQ_BENCH_CLOCK_H
#define MPSCQ_BENCH_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Picks and calibrates the source; cheap to call again. */
void bench_clock_init(void);
/* "tsc" or "clock_gettime". */
const char *bench_clock_source(void);
/* Nanoseconds per tick (1.0 for clock_gettime). */
double bench_ns_per_tick(void);

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sleep until CLOCK_MONOTONIC reads `due` ns (a paced producer's next
 * send), through signals. */
void bench_sleep_until_ns(uint64_t due);

extern int bench_clock_use_tsc;

/* A timestamp taken before the timed operation: LFENCE keeps RDTSC from
 * running ahead of earlier instructions. */
static inline uint64_t bench_ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
    if (bench_clock_use_tsc) {
        uint32_t lo, hi;
        __asm__ __volatile__("lfence\n\trdtsc" : "=a"(lo), "=d"(hi) :: "memory");
        return ((uint64_t)hi << 32) | lo;
    }
#endif
    return bench_now_ns();
}

/* A timestamp taken after the timed operation: RDTSCP waits for the
 * operation's instructions to retire. */
static inline uint64_t bench_ticks_end(void)
{
#if defined(__x86_64__) || defined(__i386__)
    if (bench_clock_use_tsc) {
        uint32_t lo, hi, aux;
        __asm__ __volatile__("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux) :: "memory");
        (void)aux;
        return ((uint64_t)hi << 32) | lo;
    }
#endif
    return bench_now_ns();
}

#endif
