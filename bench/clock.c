/* clock.c - TSC detection and calibration for mpscq-bench; a paced
 * sleep. */
#include "config.h"
#include "clock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int bench_clock_use_tsc;
static double ns_per_tick = 1.0;
static int initialised;

/* The TSC is usable only when the kernel says it is invariant
 * (constant_tsc + nonstop_tsc): then it ticks at one rate on every CPU. */
static int tsc_invariant(void)
{
#if defined(__x86_64__) || defined(__i386__)
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return 0;
    char line[4096];
    int ok = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5) == 0) {
            ok = strstr(line, " constant_tsc") && strstr(line, " nonstop_tsc") &&
                 strstr(line, " rdtscp");
            break;
        }
    }
    fclose(f);
    return ok;
#else
    return 0;
#endif
}

static double calibrate_once(void)
{
    uint64_t n0 = bench_now_ns(), t0 = bench_ticks();
    while (bench_now_ns() - n0 < 20000000u) /* 20 ms */
        ;
    uint64_t n1 = bench_now_ns(), t1 = bench_ticks_end();
    return (double)(n1 - n0) / (double)(t1 - t0);
}

void bench_clock_init(void)
{
    if (initialised)
        return;
    initialised = 1;
    if (!tsc_invariant())
        return;
    bench_clock_use_tsc = 1;
    /* Median of three 20 ms windows: a preemption inside one window
     * cannot skew the rate by much, and the median drops it. */
    double r[3];
    for (int i = 0; i < 3; i++)
        r[i] = calibrate_once();
    double lo = r[0] < r[1] ? r[0] : r[1], hi = r[0] < r[1] ? r[1] : r[0];
    ns_per_tick = r[2] < lo ? lo : r[2] > hi ? hi : r[2];
}

const char *bench_clock_source(void)
{
    return bench_clock_use_tsc ? "tsc" : "clock_gettime";
}

double bench_ns_per_tick(void)
{
    return ns_per_tick;
}

void bench_sleep_until_ns(uint64_t due)
{
    struct timespec ts = { (time_t)(due / 1000000000u), (long)(due % 1000000000u) };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}
