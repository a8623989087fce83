/*
 * ring_owner.c - who owns what in an mpscq_ring: a thread's identity
 * (pid, tid, start time), whether the owner of a producer slot or of the
 * consumer role is still alive, and the consumer role itself (one thread
 * of one process inside a consumer call at a time, MPSCQ_BUSY for
 * another: doc/ring-design.md s. 5).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ring.h"

/* ---- who we are ------------------------------------------------------- */

static int proc_ok = -1;                /* /proc/PID/task/TID/stat readable */
_Thread_local struct ring_self mpscq_ring_me MPSCQ_TLS_MODEL;
/* The fork epoch: a child's thread-local cache entries are stale. */
_Atomic uint32_t mpscq_ring_fork_epoch;   /* relaxed: read by this process's threads only */

static pthread_once_t ring_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;

/* A thread's state letter and start time in clock ticks since boot
 * (fields 3 and 22 of /proc/PID/task/TID/stat, or of /proc/TID/stat
 * when pid is 0: Linux finds any thread by its tid there).  0, or -1
 * with errno (ENOENT: no such thread). */
static int task_stat(pid_t pid, pid_t tid, char *state, uint64_t *start)
{
    char path[64], buf[1024];
    if (pid)
        snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)tid);
    else
        snprintf(path, sizeof path, "/proc/%d/stat", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) {
        errno = EIO;
        return -1;
    }
    buf[n] = 0;
    char *p = strrchr(buf, ')');   /* the command may hold spaces and ')' */
    if (!p || p[1] != ' ') {
        errno = EIO;
        return -1;
    }
    p += 2;
    *state = *p;
    /* Fields 3 .. 22: state is 3, starttime 22. */
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (!p) {
            errno = EIO;
            return -1;
        }
        p++;
    }
    *start = strtoull(p, NULL, 10);
    return 0;
}

static void thread_exit(void *arg)
{
    (void)arg;
    if (mpscq_ring_me.tid)
        mpscq_ring_release_thread(mpscq_ring_me.tid);
}

static void in_child(void)
{
    memset(&mpscq_ring_me, 0, sizeof mpscq_ring_me);
    proc_ok = -1;
    atomic_fetch_add_explicit(&mpscq_ring_fork_epoch, 1, memory_order_relaxed);
    mpscq_ring_forget_regs_in_child();
}

static void once(void)
{
    pthread_key_create(&exit_key, thread_exit);
    pthread_atfork(NULL, NULL, in_child);
}

const struct ring_self *mpscq_ring_self(void)
{
    struct ring_self *me = &mpscq_ring_me;
    pthread_once(&ring_once, once);
    if (!me->pid)
        me->pid = getpid();
    if (!me->tid) {
        /* tid last: a signal handler that calls in meanwhile finds it 0
         * and fills the fields itself (the same values), never a tid
         * with the rest still missing. */
        pid_t tid = (pid_t)syscall(SYS_gettid);
        char st;
        uint64_t start = 0;
        int ok = task_stat(me->pid, tid, &st, &start) == 0;
        me->start_time = ok ? start : 0;
        if (proc_ok < 0)
            proc_ok = ok;
        me->consumer = RING_CONSUMER_WORD(tid, me->start_time);
        atomic_signal_fence(memory_order_seq_cst);
        me->tid = tid;
    }
    return me;
}

void mpscq_ring_watch_exit(void)
{
    pthread_once(&ring_once, once);
    pthread_setspecific(exit_key, (void *)1);
}

/* Whether thread tid is alive and, when start is not 0, started at
 * `start` (modulo mask: no reused tid).  pid 0: the tid alone. */
static int task_alive(pid_t pid, pid_t tid, uint64_t start, uint64_t mask)
{
    mpscq_ring_self();
    if (proc_ok) {
        char st;
        uint64_t now;
        if (task_stat(pid, tid, &st, &now) == 0) {
            if (st == 'Z' || st == 'X')
                return 0;
            return !start || (now & mask) == start;
        }
        if (errno != ENOENT && errno != ESRCH)
            return 1;
        /* ENOENT: gone, or hidden (/proc mounted hidepid=2 hides other
         * users' processes): ask the kernel. */
    }
    if (pid)
        return syscall(SYS_tgkill, pid, tid, 0) == 0 || errno != ESRCH;
    /* kill() finds a thread by its tid too (and signals its group). */
    return kill(tid, 0) == 0 || errno != ESRCH;
}

/* 1 while the owner thread of a slot may still commit.  With /proc: its
 * task exists, is not a zombie, and started when the slot says (no
 * reused tid).  Without: its process exists (kill(pid, 0)).  Pids are
 * this process's namespace's (ring-design.md s. 8). */
int mpscq_ring_owner_alive(uint64_t owner, uint64_t start_time)
{
    if (owner & RING_OWNER_TAKING)
        return 1;
    return task_alive((pid_t)(owner >> 32), (pid_t)(owner & 0xffffffffu), start_time, UINT64_MAX);
}

/* ---- the consumer role -------------------------------------------------- */

/* Inside: as ring_read.c's consumer_enter after its swap. */
static int entered(struct mpscq_ring *r)
{
    (void)r;
    mpscq_ring_me.inside++;
    MPSCQ_TEST_HOOK(MPSCQ_HOOK_RING_CONSUMER_IN, NULL, 0);
    return MPSCQ_OK;
}

int mpscq_ring_consumer_enter_slow(struct mpscq_ring *r)
{
    const struct ring_self *self = mpscq_ring_self();
    uint64_t me = self->consumer;   /* not 0 now: the tid in it is not */
    _Atomic uint64_t *owner = &r->cs->owner;
    /* A few rounds: each one either enters, finds a live consumer, or
     * loses a race to take a dead one's place (to another taker, which
     * then is the live consumer). */
    for (int round = 0; round < 4; round++) {
        uint64_t o = 0;
        /* Acquire on success, as the fast path's; relaxed on failure:
         * the word read is only judged, nothing it guards is read. */
        if (atomic_compare_exchange_strong_explicit(owner, &o, me, memory_order_acquire,
                                                    memory_order_relaxed)) {
            MPSCQ_HB_AFTER(owner);
            return entered(r);
        }
        /* Our own word: this thread is inside a consumer call (a signal
         * handler or a test hook calling in: BUSY), or it is not, and the
         * word is stale.  That is an exec from another thread of a process
         * whose main thread was inside a call: the new image has the main
         * thread's tid and start time, and without this it could never be
         * the consumer again (test_consumer_exec_from_thread). */
        if (o == me ? self->inside != 0 : mpscq_ring_consumer_alive(o))
            break;
        MPSCQ_TEST_HOOK(MPSCQ_HOOK_RING_CONSUMER_TAKEOVER, NULL, o);
        /* Its thread is gone (killed inside a call: asleep in read_wait,
         * most often), or the word is garbage a faulty process wrote.
         * Acquire: whatever that consumer released before; a consumer
         * killed mid-call leaves the state as it stood, which every call
         * validates anyway (ring-design.md s. 6). */
        if (atomic_compare_exchange_strong_explicit(owner, &o, me, memory_order_acquire,
                                                    memory_order_relaxed)) {
            MPSCQ_HB_AFTER(owner);
            return entered(r);
        }
    }
    /* Relaxed: statistics. */
    atomic_fetch_add_explicit(&r->sh->busy_count, 1, memory_order_relaxed);
    return MPSCQ_BUSY;
}

int mpscq_ring_consumer_alive(uint64_t w)
{
    pid_t tid = (pid_t)(w >> RING_CONSUMER_TID_SHIFT);
    if (tid == 0)
        return 0;           /* garbage: no thread has tid 0 */
    return task_alive(0, tid, w & RING_CONSUMER_START_MASK, RING_CONSUMER_START_MASK);
}
