/* testutil.h - helpers shared by the Check suites. */
#ifndef MPSCQ_TESTUTIL_H
#define MPSCQ_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <check.h>
#include "mpscq.h"

/* A passing assertion touches nothing of Check's.  Check's own
 * ck_assert_msg (every ck_assert_* expands to it) records each passing
 * assertion with _mark_point: under a mutex, a write and a flush to the
 * test's result file, a system call per assertion.  The suites assert
 * on every message of their million-message runs, so that was most of
 * their time (test_slot_layout: 22 s of 12 million marks natively, 223 s
 * under Helgrind), and a lock every producer took between two
 * enqueues, serialising the very threads the tests race (and giving
 * Helgrind and TSan happens-before edges the library does not).  A
 * failing assertion reports as before; a test that crashes or times out
 * names the last explicit mark_point() instead of the last assertion. */
#undef ck_assert_msg
#define ck_assert_msg(expr, ...) \
    ((expr) ? (void)0 \
            : _ck_assert_failed(__FILE__, __LINE__, "Assertion '" #expr "' failed", ##__VA_ARGS__))

/* Stress sizes are multiplied by MPSCQ_STRESS_SCALE/100 (default 100),
 * never below `min`. */
size_t tu_scaled(size_t n, size_t min);

/* Resident set of this process in KiB (/proc/self/statm), -1 if unknown. */
long tu_rss_kib(void);

/* Non-zero when running under Valgrind. */
int tu_under_valgrind(void);

/* Message encoding: producer id in the high 16 bits, sequence below.
 * Sequence 0 of producer 0 is the NULL pointer, on purpose. */
static inline void *tu_msg(unsigned producer, uint64_t seq)
{
    return (void *)(uintptr_t)(((uint64_t)producer << 48) | seq);
}
static inline unsigned tu_producer(void *m) { return (unsigned)((uintptr_t)m >> 48); }
static inline uint64_t tu_seq(void *m) { return (uint64_t)(uintptr_t)m & ((UINT64_C(1) << 48) - 1); }

/* A counting allocator that can be told to fail.  Every byte it hands out
 * is tracked, so tests can assert that memory came back. */
struct tu_alloc {
    _Atomic long long outstanding;   /* bytes */
    _Atomic long long peak;
    _Atomic long calls;
    _Atomic long fail_at;            /* fail the call with this number (1-based); 0 = never */
    _Atomic long fail_from;          /* fail every call from this number on; 0 = never */
};
void tu_alloc_init(struct tu_alloc *a);
void tu_config_alloc(mpscq_config *cfg, struct tu_alloc *a);

/* Collects log lines. */
struct tu_log {
    _Atomic int count;
    int last_level;
    char last[256];
};
void tu_config_log(mpscq_config *cfg, struct tu_log *l);

/* A start line for threads. */
struct tu_barrier {
    _Atomic int waiting;
    int total;
};
void tu_barrier_init(struct tu_barrier *b, int total);
void tu_barrier_wait(struct tu_barrier *b);

/* Drain q with verification: per-producer FIFO, no duplicate, no loss.
 * `expected[p]` is how many messages producer p sends; returns the number
 * of messages received; fails the running Check test on any violation.
 * The consumer spins on MPSCQ_EMPTY until `total` arrived. */
size_t tu_drain_verify(mpscq_t *q, unsigned producers, const uint64_t *expected);

/* The consumer finds q idle: two empty dequeues with no enqueue between,
 * after which the segment pool is back within MPSCQ_POOL_MAX (design.md
 * s. 5).  Fails the running test if a message is there. */
void tu_idle(mpscq_t *q);

/* A backlog: n messages (0 .. n-1) enqueued by this thread, then all
 * dequeued in order, with no empty dequeue in between.  Returns the
 * allocator's outstanding bytes with the backlog queued (its peak). */
long long tu_backlog(mpscq_t *q, struct tu_alloc *a, uintptr_t n);

/* Run a suite with Check, print Check's summary line (also to file
 * descriptor 9 when open: the build's test harness points it at the
 * console, so `make check` shows every suite's line), and return the exit
 * status for main. */
struct Suite;
int tu_run(const char *name, struct Suite *s);

#endif
