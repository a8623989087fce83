/*
 * wait.c - futex sleep/wake and the asymmetric barrier for the consumer.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <limits.h>
#include <time.h>
#include <pthread.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#endif

#include "arch.h"
#include "consumer.h"
#include "consumers.h"
#include "wait.h"

static int have_membarrier;
static pthread_once_t membarrier_once = PTHREAD_ONCE_INIT;

static void membarrier_register(void)
{
#if defined(__linux__) && defined(SYS_membarrier)
    long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0);
    if (cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
        syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0) == 0)
        have_membarrier = 1;
#endif
    MPSCQ_HB_BEFORE(&membarrier_once); /* Helgrind does not model pthread_once */
}

int mpscq_wait_init(void)
{
    pthread_once(&membarrier_once, membarrier_register);
    MPSCQ_HB_AFTER(&membarrier_once);
    return have_membarrier;
}

void mpscq_wait_barrier(const struct mpscq *q)
{
    /* Orders our parked = 1 store before the re-check's loads. */
    atomic_thread_fence(memory_order_seq_cst);
#if defined(__linux__) && defined(SYS_membarrier)
    /* Every running thread of the process executes a full barrier before
     * this returns: a producer's slot write that preceded its (compiler-
     * ordered) read of parked is now visible to our re-check, or that read
     * comes after the barrier and sees parked == 1. */
    if (!q->need_fence &&
        MPSCQ_UNLIKELY(syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0) != 0)) {
        /* It worked at create (need_fence is 0); a filter installed since
         * (seccomp) refuses it.  The sleeping consumer's wake-up and the
         * consumer check (design.md s. 7, 8.1) would be unsound without
         * it, and the queue's fast paths cannot switch to fences while
         * running: say so and stop rather than lose a wake-up or let two
         * consumers in. */
        mpscq_log(q, MPSCQ_LOG_ERROR,
                  "membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) failed after the queue was "
                  "created (a seccomp filter?); aborting");
        abort();
    }
#else
    (void)q;
#endif
}

int mpscq_futex_wait(_Atomic int *addr, int val, const struct timespec *rel)
{
#ifdef __linux__
    return syscall(SYS_futex, (int *)addr, FUTEX_WAIT_PRIVATE, val, rel, NULL, 0) != 0 &&
           errno == ETIMEDOUT;
#else
    (void)addr; (void)val;
    struct timespec nap = { 0, 50000 };
    if (rel && (rel->tv_sec == 0 && rel->tv_nsec < nap.tv_nsec))
        nap = *rel;
    nanosleep(&nap, NULL);
    return 1;
#endif
}

void mpscq_futex_wake(_Atomic int *addr)
{
#ifdef __linux__
    /* errno kept: a producer may run in a signal handler (design.md s. 13). */
    int e = errno;
    syscall(SYS_futex, (int *)addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    errno = e;
#else
    (void)addr;
#endif
}

void mpscq_futex_wake_all(_Atomic int *addr)
{
#ifdef __linux__
    int e = errno;
    syscall(SYS_futex, (int *)addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    errno = e;
#else
    (void)addr;
#endif
}

int mpscq_futex_wait_shared(_Atomic uint32_t *addr, uint32_t val, uint64_t deadline)
{
    struct timespec ts, *tsp = NULL;
    if (deadline != UINT64_MAX) {
        uint64_t now = mpscq_mono_ns();
        if (now >= deadline)
            return MPSCQ_TIMEOUT;
        uint64_t left = deadline - now;
        ts.tv_sec = (time_t)(left / 1000000000u);
        ts.tv_nsec = (long)(left % 1000000000u);
        tsp = &ts;
    }
    syscall(SYS_futex, (int *)addr, FUTEX_WAIT, (int)val, tsp, NULL, 0);
    return MPSCQ_OK;
}

void mpscq_futex_wake_shared_all(_Atomic uint32_t *addr)
{
    int e = errno;
    syscall(SYS_futex, (int *)addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
    errno = e;
}

void mpscq_wake_consumer(struct mpscq *q)
{
    /* seq_cst XCHG: exactly one waker pays for the syscall. */
    MPSCQ_RMW(1);
#ifdef MPSCQ_TEST_HOOKS
    atomic_fetch_add_explicit(&mpscq_test_producer_wakes, 1, memory_order_relaxed);
#endif
    if (atomic_exchange_explicit(&q->parked, 0, memory_order_seq_cst))
        mpscq_futex_wake(&q->parked);
}

void mpscq_wake_consumer_close(struct mpscq *q)
{
    /* seq_cst XCHG, after the close ticket's seq_cst store: a consumer
     * that reads this value (its nap's futex compare, or a look after its
     * sleep) then reads the close.  A napping consumer waits on parked ==
     * 0, so the new value keeps it from starting a nap, and the wake-up
     * ends one it is in; a sleeping one is woken as by a producer. */
    MPSCQ_RMW(1);
    atomic_exchange_explicit(&q->parked, MPSCQ_PARKED_CLOSE, memory_order_seq_cst);
    if (q->many)
        mpscq_futex_wake_all(&q->parked); /* every sleeping consumer */
    else
        mpscq_futex_wake(&q->parked);
}

/* ------------------------------------------------------------------ */
/* The sleeping consumer (design.md s. 7)                               */

/* The kernel adds a thread's timer slack (50 us by default) to every
 * timed sleep: a 10 us nap took 86 us on this project's VM, 30 us with a
 * slack of 1 us.  The first nap of a thread lowers its slack to 1 us, once
 * (mpscq_dequeue_wait(3) says so). */
void mpscq_lower_timer_slack(void)
{
#if defined(__linux__) && defined(PR_SET_TIMERSLACK)
    static _Thread_local int done;
    if (done)
        return;
    done = 1;
    if (prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) > 1000)
        prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
#endif
}

#define mono_ns mpscq_mono_ns

/* The naps of mpscq_dequeue_wait (design.md s. 7): futex waits of nap_ns
 * on parked == 0, which no producer ends (parked stays 0, so a producer's
 * wake check costs it one load, as when the consumer is awake), until a
 * look finds a message (OK), the queue closed and drained (CLOSED), the
 * deadline (TIMEOUT), or nap_idle_ns of naps found nothing (EMPTY: the
 * caller then sleeps until woken).  mpscq_close sets parked and wakes a
 * nap. */
static int naps(struct mpscq *q, void **msg, uint64_t deadline)
{
    mpscq_lower_timer_slack();
    uint64_t start = mono_ns();
    for (;;) {
        uint64_t now = mono_ns();
        if (now >= deadline) {
            int rc = mpscq_dequeue_in(q, msg);
            return rc == MPSCQ_EMPTY ? MPSCQ_TIMEOUT : rc;
        }
        if (now - start >= q->nap_idle_ns)
            return MPSCQ_EMPTY;
        /* Relaxed: after a close (MPSCQ_PARKED_CLOSE) with a ticket still
         * unwritten, a nap would end at once; sleep until woken instead
         * (the writer wakes us: parked != 0). */
        if (atomic_load_explicit(&q->parked, memory_order_relaxed) != 0)
            return MPSCQ_EMPTY;
        /* Aim at 90 % of nap_ns, less what naps have overrun lately (the
         * kernel's wake-up time, timer slack), so that a nap, and the wait
         * of a message that lands in it, stays within nap_ns; never beyond
         * the deadline. */
        uint64_t aim = q->nap_ns - q->nap_ns / 10;
        uint64_t want = aim > q->nap_over + 1000 ? aim - q->nap_over : 1000;
        uint64_t left = deadline - now < want ? deadline - now : want;
        struct timespec rel = { (time_t)(left / 1000000000u), (long)(left % 1000000000u) };
        MPSCQ_STAT_ADD(q, st_naps, 1);
        MPSCQ_TEST_HOOK(MPSCQ_HOOK_NAP, q, left);
        int timed_out = mpscq_futex_wait(&q->parked, 0, &rel);
        MPSCQ_TEST_HOOK(MPSCQ_HOOK_NAPPED, q, (uint64_t)timed_out);
        if (timed_out) {
            /* The overrun, smoothed (consumer-private), capped at nap_ns. */
            uint64_t took = mono_ns() - now;
            uint64_t over = took > left ? took - left : 0;
            if (over > q->nap_ns)
                over = q->nap_ns;
            q->nap_over = (3 * q->nap_over + over) / 4;
        }
        int rc = mpscq_dequeue_in(q, msg);
        if (rc != MPSCQ_EMPTY)
            return rc;
    }
}

uint64_t mpscq_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t mpscq_deadline(long long timeout_ns)
{
    if (timeout_ns < 0)
        return UINT64_MAX;
    uint64_t now = mono_ns();
    return (uint64_t)timeout_ns >= UINT64_MAX - now ? UINT64_MAX : now + (uint64_t)timeout_ns;
}

static int dequeue_wait_in(struct mpscq *q, void **msg, long long timeout_ns);

int mpscq_wait_spin(unsigned *budget_ns, long long timeout_ns, int (*take)(void *, void **),
                    void *ctx, void **msg)
{
    /* Spin first: a message is often only a write away.  The budget
     * (consumer-private) doubles when spinning found a message and halves
     * when it did not, down to a floor from which it can recover: when
     * messages come further apart than a sleep costs, the consumer stops
     * burning CPU on a spin that never pays.  Never beyond the timeout. */
    unsigned budget = *budget_ns, spent = 0;
    unsigned cap = timeout_ns > 0 && (unsigned long long)timeout_ns < budget ? (unsigned)timeout_ns
                                                                             : budget;
    for (unsigned ns = 16; spent + ns <= cap; ns <<= 1) {
        mpscq_spin_ns(ns);
        spent += ns;
        int rc = take(ctx, msg);
        if (rc != MPSCQ_EMPTY) {
            *budget_ns = budget * 2 > MPSCQ_WAIT_SPIN_MAX_NS ? MPSCQ_WAIT_SPIN_MAX_NS : budget * 2;
            return rc;
        }
    }
    *budget_ns = budget / 2 < MPSCQ_WAIT_SPIN_MIN_NS ? MPSCQ_WAIT_SPIN_MIN_NS : budget / 2;
    return MPSCQ_EMPTY;
}

static int take_one(void *q, void **msg)
{
    return mpscq_dequeue_in((struct mpscq *)q, msg);
}

int mpscq_dequeue_batch_wait(mpscq_t *q, void **msgs, size_t max, size_t *n,
                             long long timeout_ns)
{
    if (n)
        *n = 0;
    if (!q || !msgs || !n || max == 0)
        return MPSCQ_INVAL;
    if (q->many)
        return mpscq_many_dequeue_batch_wait(q, msgs, max, n, timeout_ns);
    int rc = mpscq_consumer_enter(q);
    if (rc != MPSCQ_OK)
        return rc;
    /* The first message as mpscq_dequeue_wait takes it (spin, naps,
     * sleep), then whatever else is ready, without waiting more. */
    rc = dequeue_wait_in(q, &msgs[0], timeout_ns);
    if (rc == MPSCQ_OK)
        *n = 1 + mpscq_dequeue_batch_in(q, msgs + 1, max - 1);
    mpscq_consumer_exit();
    return rc;
}

int mpscq_dequeue_wait(mpscq_t *q, void **msg, long long timeout_ns)
{
    if (!q || !msg)
        return MPSCQ_INVAL;
    if (q->many)
        return mpscq_many_dequeue_wait(q, msg, timeout_ns);
    /* Inside from the first look to the last, asleep too: another
     * thread's consumer call meanwhile is MPSCQ_BUSY. */
    int rc = mpscq_consumer_enter(q);
    if (rc != MPSCQ_OK)
        return rc;
    rc = dequeue_wait_in(q, msg, timeout_ns);
    mpscq_consumer_exit();
    return rc;
}

static int dequeue_wait_in(struct mpscq *q, void **msg, long long timeout_ns)
{
    int rc = mpscq_dequeue_in(q, msg);
    if (rc != MPSCQ_EMPTY)
        return rc;
    if (timeout_ns == 0)
        return MPSCQ_TIMEOUT;
    uint64_t now;
    uint64_t deadline = mpscq_deadline(timeout_ns);
    rc = mpscq_wait_spin(&q->wait_spin_ns, timeout_ns, take_one, q, msg);
    if (rc != MPSCQ_EMPTY)
        return rc;
    rc = naps(q, msg, deadline);
    if (rc != MPSCQ_EMPTY)
        return rc;
    /* The first sleep is light: no membarrier, and at most
     * MPSCQ_LIGHT_PARK_NS.  A producer whose slot store was still in its
     * store buffer when it read parked == 0 may not wake us; the timeout
     * bounds what that costs.  Only when a light sleep ends with nothing
     * to take does the consumer pay the barrier that makes the wake-up
     * exact (design.md section 7).  A light sleep ended by a producer
     * finds its message in the re-check that opens the next round, which
     * is light again; so at high message rates the consumer never pays
     * the barrier, whose inter-processor interrupts also hit the
     * producers. */
    int light = 1;
    for (;;) {
        /* seq_cst: the Dekker store; mpscq_wait_barrier (exact) orders it
         * before the re-check.  (In the light round it is no StoreLoad
         * fence for C11 - an RCpc load may pass it on AArch64 - which
         * only adds to the misses the light timeout bounds.) */
        atomic_store_explicit(&q->parked, 1, memory_order_seq_cst);
        now = mono_ns();
        if (!light && now < deadline) {
            /* No barrier for a wait that is over anyway: a timed-out
             * call only looks once more (below). */
            MPSCQ_TEST_HOOK(MPSCQ_HOOK_BARRIER, q, 0);
            mpscq_wait_barrier(q);
        }
        rc = mpscq_dequeue_in(q, msg);
        if (rc != MPSCQ_EMPTY) {
            /* Relaxed: producers only read it to decide on a wake-up; a
             * stale 1 costs one spurious FUTEX_WAKE. */
            atomic_store_explicit(&q->parked, 0, memory_order_relaxed);
            return rc;
        }
        if (now >= deadline) {
            /* Relaxed, as above. */
            atomic_store_explicit(&q->parked, 0, memory_order_relaxed);
            return MPSCQ_TIMEOUT;
        }
        uint64_t left = deadline - now;
        if (light && left > MPSCQ_LIGHT_PARK_NS)
            left = MPSCQ_LIGHT_PARK_NS;
        struct timespec rel, *relp = NULL;
        if (light || deadline != UINT64_MAX) {
            rel.tv_sec = (time_t)(left / 1000000000u);
            rel.tv_nsec = (long)(left % 1000000000u);
            relp = &rel;
        }
        MPSCQ_STAT_ADD(q, st_parks, 1);
        MPSCQ_TEST_HOOK(MPSCQ_HOOK_PARK, q, (uint64_t)light);
        mpscq_futex_wait(&q->parked, 1, relp);
        if (light) {
            /* Re-check before deciding the next round: a light sleep that
             * a producer ended has its message ready now, and the next
             * round stays light.  Only one that found nothing (timeout,
             * or a wake-up whose message another call took) makes the
             * next round exact.  No barrier is needed for this check:
             * finding a message is always correct, and finding none only
             * selects the exact round, which re-checks after its barrier. */
            rc = mpscq_dequeue_in(q, msg);
            if (rc != MPSCQ_EMPTY) {
                /* Relaxed, as above. */
                atomic_store_explicit(&q->parked, 0, memory_order_relaxed);
                return rc;
            }
            light = 0;
        }
    }
}
