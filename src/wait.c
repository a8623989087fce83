/*
 * wait.c - futex sleep/wake and the asymmetric barrier for the consumer.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#endif

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
    if (!q->need_fence)
        syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0);
#else
    (void)q;
#endif
}

void mpscq_futex_wait(_Atomic int *addr, int val, const struct timespec *rel)
{
#ifdef __linux__
    syscall(SYS_futex, (int *)addr, FUTEX_WAIT_PRIVATE, val, rel, NULL, 0);
#else
    (void)addr; (void)val;
    struct timespec nap = { 0, 50000 };
    if (rel && (rel->tv_sec == 0 && rel->tv_nsec < nap.tv_nsec))
        nap = *rel;
    nanosleep(&nap, NULL);
#endif
}

void mpscq_futex_wake(_Atomic int *addr)
{
#ifdef __linux__
    syscall(SYS_futex, (int *)addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
#else
    (void)addr;
#endif
}

void mpscq_wake_consumer(struct mpscq *q)
{
    /* seq_cst XCHG: exactly one waker pays for the syscall. */
    MPSCQ_RMW(1);
    if (atomic_exchange_explicit(&q->parked, 0, memory_order_seq_cst))
        mpscq_futex_wake(&q->parked);
}
