/*
 * arch_base.c - C twins of the architecture primitives (see arch.h), and
 * the calibrated spin that sits on top of either.
 */
#include "config.h"

#include <time.h>
#include <pthread.h>
#include <stdatomic.h>

#include "arch.h"

#if defined(__SANITIZE_THREAD__)
#define MPSCQ_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MPSCQ_TSAN 1
#endif
#endif

int mpscq_arch_cas16_base(void *p, uint64_t expected[2], const uint64_t desired[2])
{
#if defined(__x86_64__) && !defined(MPSCQ_TSAN)
    /* CMPXCHG16B without libatomic: GCC's __atomic 16-byte builtins call
     * into libatomic, so spell the instruction.  LOCK makes it a full
     * barrier (seq_cst).  Requires CPUID.1:ECX.CX16, checked at create. */
    unsigned char ok;
    uint64_t lo = expected[0], hi = expected[1];
    __asm__ __volatile__("lock cmpxchg16b %1\n\tsete %0"
                         : "=q"(ok), "+m"(*(volatile unsigned __int128 *)p),
                           "+a"(lo), "+d"(hi)
                         : "b"(desired[0]), "c"(desired[1])
                         : "memory", "cc");
    expected[0] = lo;
    expected[1] = hi;
    return ok;
#elif defined(__SIZEOF_INT128__)
    /* Elsewhere the compiler's builtin (inline CASP/LDXP-STXP on AArch64,
     * libatomic where it must), and under ThreadSanitizer, which cannot
     * see the ordering of an asm statement but instruments this builtin;
     * seq_cst on both outcomes. */
    unsigned __int128 e = ((unsigned __int128)expected[1] << 64) | expected[0];
    unsigned __int128 d = ((unsigned __int128)desired[1] << 64) | desired[0];
    int ok = __atomic_compare_exchange_n((unsigned __int128 *)p, &e, d, 0,
                                         __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    expected[0] = (uint64_t)e;
    expected[1] = (uint64_t)(e >> 64);
    return ok;
#else
#error "libmpscq needs a 16-byte compare-and-swap"
#endif
}

static inline void pause_once(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    atomic_signal_fence(memory_order_seq_cst);
#endif
}

void mpscq_arch_pause_loop_base(unsigned long n)
{
    for (unsigned long i = 0; i < n; i++)
        pause_once();
}

/* Pause hints per microsecond, measured once: PAUSE costs ~10 cycles on
 * older cores and ~140 on Skylake and later, so a fixed iteration count
 * would mean a 14x different delay.  Measured by mpscq_spin_init (from
 * mpscq_create), never inside a spin: a first wait must not pay for it.
 * Relaxed: written once, before the first queue exists; a spin that
 * somehow read the default would only be off in length. */
static _Atomic unsigned pauses_per_us = 100;
static pthread_once_t calib_once = PTHREAD_ONCE_INIT;

#ifdef MPSCQ_TEST_HOOKS
_Atomic unsigned long mpscq_test_calibrations, mpscq_test_spins;
#endif

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void calibrate(void)
{
    /* 3 x 2000 hints: about 0.1-0.3 ms once per process. */
    const unsigned n = 2000;
    uint64_t best = UINT64_MAX;
    for (int round = 0; round < 3; round++) {
        uint64_t t0 = now_ns();
        mpscq_arch_pause_loop(n);
        uint64_t dt = now_ns() - t0;
        if (dt < best)
            best = dt;
    }
    if (best == 0)
        best = 1;
    uint64_t per_us = (uint64_t)n * 1000u / best;
    atomic_store_explicit(&pauses_per_us,
                          per_us < 1 ? 1 : per_us > 100000 ? 100000 : (unsigned)per_us,
                          memory_order_relaxed);
#ifdef MPSCQ_TEST_HOOKS
    atomic_fetch_add(&mpscq_test_calibrations, 1);
#endif
    MPSCQ_HB_BEFORE(&calib_once); /* Helgrind does not model pthread_once */
}

void mpscq_spin_init(void)
{
    pthread_once(&calib_once, calibrate);
    MPSCQ_HB_AFTER(&calib_once);
}

void mpscq_spin_ns(unsigned ns)
{
#ifdef MPSCQ_TEST_HOOKS
    atomic_fetch_add(&mpscq_test_spins, 1);
#endif
    unsigned per_us = atomic_load_explicit(&pauses_per_us, memory_order_relaxed);
    mpscq_arch_pause_loop(((unsigned long)ns * per_us + 999) / 1000);
}

#ifdef MPSCQ_TEST_DISPATCH
const struct mpscq_impl mpscq_impl_base = {
    "c11", mpscq_arch_cas16_base, mpscq_arch_pause_loop_base,
    mpscq_fast_enqueue_base, mpscq_fast_reserve_base, mpscq_fast_dequeue_base,
    mpscq_enqueue_entry_base, mpscq_dequeue_entry_base,
    mpscq_ring_claim_base, mpscq_ring_publish_base, mpscq_ring_write_base,
};
#ifdef MPSCQ_HAVE_ASM
const struct mpscq_impl mpscq_impl_asm = {
    MPSCQ_ASM_NAME, mpscq_arch_cas16_x86_64, mpscq_arch_pause_loop_x86_64, mpscq_fast_enqueue_x86_64, mpscq_fast_reserve_x86_64,
    mpscq_fast_dequeue_x86_64, mpscq_enqueue_entry_x86_64, mpscq_dequeue_entry_x86_64,
    mpscq_ring_claim_x86_64, mpscq_ring_publish_x86_64, mpscq_ring_write_x86_64,
};
#endif
const struct mpscq_impl *mpscq_impl = &mpscq_impl_base;
#endif
