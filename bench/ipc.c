/*
 * ipc.c - the "ipc" workload: producer processes and a consumer process
 * (mpscq-bench's own) through mpscq_ring and the usual transports, in one
 * run: a pipe, a Unix SOCK_SEQPACKET socket, a POSIX message queue, a
 * ring in shared memory under a process-shared pthread mutex, and (one
 * producer only) a Lamport single-producer ring in shared memory, with
 * cached indices.
 *
 * Each run forks the producers, which wait for a start flag in shared
 * memory; the consumer takes every message, checks each producer's order
 * and count, and the rate is from the start flag to the last message.
 * Messages are 64 bytes and 1 KiB: producer id and sequence, then filler.
 */
#include "config.h"
#include "ipc.h"
#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <mpscq.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

enum { T_RING, T_RING_PEEK, T_PIPE, T_SEQPACKET, T_MQUEUE, T_MUTEX, T_SPSC, NT };
static const char *const tname[NT] = { "mpscq_ring", "mpscq_ring_peek", "pipe", "seqpacket", "mqueue",
                                       "shm-mutex-ring", "shm-spsc-ring" };
#define RING_BYTES (1u << 20)   /* every shared-memory transport: 1 MiB of payload */
#define MAXSZ 1024

/* The shared-memory transports' state: one anonymous MAP_SHARED page set. */
struct shm_mutex_ring {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    uint64_t head, tail, slots, size;
    unsigned char data[];
};
struct shm_spsc {
    _Alignas(64) _Atomic uint64_t head;   /* consumer */
    _Alignas(64) _Atomic uint64_t tail;   /* producer */
    _Alignas(64) uint64_t slots, size;
    unsigned char data[];
};
struct ipc_run {
    int kind;
    size_t size;
    unsigned producers;
    uint64_t per;
    _Atomic int *go;
    mpscq_ring_t *ring;
    int fd[2];
    mqd_t mq;
    char mqname[64];
    void *shm;
    size_t shm_len;
    /* Single-producer ring: this process's copy of the other side's
     * index, reloaded only when it says full (producer) or empty
     * (consumer), so that each side reads the other's line once per
     * batch rather than once per message. */
    uint64_t spsc_head_seen, spsc_tail_seen;
};

/* A consumer or producer that finds nothing or no room: spin a little
 * (the other side is usually a few hundred nanoseconds away), then give
 * the CPU up.  The same for every shared-memory transport. */
static void backoff(unsigned *n)
{
    if (++*n < 64) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
        return;
    }
    *n = 0;
    sched_yield();
}

static int setup(struct ipc_run *x)
{
    switch (x->kind) {
    case T_RING:
    case T_RING_PEEK: {
        mpscq_ring_config cfg;
        mpscq_ring_config_init(&cfg);
        cfg.bytes = RING_BYTES;
        cfg.max_message = x->size;
        return mpscq_ring_create(&x->ring, NULL, &cfg) == MPSCQ_OK ? 0 : -1;
    }
    case T_PIPE:
        return pipe(x->fd);
    case T_SEQPACKET:
        return socketpair(AF_UNIX, SOCK_SEQPACKET, 0, x->fd);
    case T_MQUEUE: {
        snprintf(x->mqname, sizeof x->mqname, "/mpscq-bench-%d", (int)getpid());
        mq_unlink(x->mqname);
        /* 10 messages: Linux's default limit for an unprivileged process. */
        struct mq_attr a = { .mq_maxmsg = 10, .mq_msgsize = (long)x->size };
        x->mq = mq_open(x->mqname, O_RDWR | O_CREAT | O_EXCL, 0600, &a);
        return x->mq == (mqd_t)-1 ? -1 : 0;
    }
    case T_MUTEX: {
        uint64_t slots = RING_BYTES / x->size;
        x->shm_len = sizeof(struct shm_mutex_ring) + slots * x->size;
        struct shm_mutex_ring *m = mmap(NULL, x->shm_len, PROT_READ | PROT_WRITE,
                                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return -1;
        pthread_mutexattr_t ma;
        pthread_condattr_t ca;
        pthread_mutexattr_init(&ma);
        pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
        pthread_condattr_init(&ca);
        pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
        pthread_mutex_init(&m->lock, &ma);
        pthread_cond_init(&m->not_empty, &ca);
        pthread_cond_init(&m->not_full, &ca);
        m->slots = slots;
        m->size = x->size;
        x->shm = m;
        return 0;
    }
    default: { /* T_SPSC */
        uint64_t slots = RING_BYTES / x->size;
        x->shm_len = sizeof(struct shm_spsc) + slots * x->size;
        struct shm_spsc *s = mmap(NULL, x->shm_len, PROT_READ | PROT_WRITE,
                                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (s == MAP_FAILED)
            return -1;
        s->slots = slots;
        s->size = x->size;
        x->shm = s;
        return 0;
    }
    }
}

static void teardown(struct ipc_run *x)
{
    switch (x->kind) {
    case T_RING:
    case T_RING_PEEK: mpscq_ring_detach(x->ring); break;
    case T_PIPE:
    case T_SEQPACKET: close(x->fd[0]); close(x->fd[1]); break;
    case T_MQUEUE: mq_close(x->mq); mq_unlink(x->mqname); break;
    default: munmap(x->shm, x->shm_len); break;
    }
}

static int send_one(struct ipc_run *x, const unsigned char *m)
{
    size_t n = x->size;
    switch (x->kind) {
    case T_RING:
    case T_RING_PEEK: {
        int rc;
        unsigned b = 0;
        while ((rc = mpscq_ring_write(x->ring, m, n)) == MPSCQ_FULL)
            backoff(&b);
        return rc == MPSCQ_OK ? 0 : -1;
    }
    case T_PIPE:          /* n <= PIPE_BUF: one write is one message */
    case T_SEQPACKET:
        for (;;) {
            ssize_t w = write(x->fd[1], m, n);
            if (w == (ssize_t)n)
                return 0;
            if (w < 0 && errno == EINTR)
                continue;
            return -1;
        }
    case T_MQUEUE:
        while (mq_send(x->mq, (const char *)m, n, 0) != 0)
            if (errno != EINTR)
                return -1;
        return 0;
    case T_MUTEX: {
        struct shm_mutex_ring *r = x->shm;
        pthread_mutex_lock(&r->lock);
        while (r->tail - r->head == r->slots)
            pthread_cond_wait(&r->not_full, &r->lock);
        memcpy(r->data + (r->tail % r->slots) * r->size, m, n);
        r->tail++;
        pthread_cond_signal(&r->not_empty);
        pthread_mutex_unlock(&r->lock);
        return 0;
    }
    default: { /* T_SPSC */
        struct shm_spsc *s = x->shm;
        uint64_t t = atomic_load_explicit(&s->tail, memory_order_relaxed);
        unsigned b = 0;
        /* acquire: the consumer is done with the slot */
        while (t - x->spsc_head_seen == s->slots) {
            x->spsc_head_seen = atomic_load_explicit(&s->head, memory_order_acquire);
            if (t - x->spsc_head_seen == s->slots)
                backoff(&b);
        }
        memcpy(s->data + (t % s->slots) * s->size, m, n);
        /* release: the copy before the index */
        atomic_store_explicit(&s->tail, t + 1, memory_order_release);
        return 0;
    }
    }
}

static int recv_one(struct ipc_run *x, unsigned char *m)
{
    size_t n = x->size, len;
    switch (x->kind) {
    case T_RING:
        /* As a consumer would wait: read_wait spins a little, then
         * sleeps on the ring's futex. */
        return mpscq_ring_read_wait(x->ring, m, n, &len, -1) == MPSCQ_OK && len == n ? 0 : -1;
    case T_RING_PEEK: {
        /* The zero-copy read: the message is checked in place (its tag
         * copied out, as every transport's is), then released. */
        const void *d;
        if (mpscq_ring_peek_wait(x->ring, &d, &len, -1) != MPSCQ_OK || len != n)
            return -1;
        memcpy(m, d, sizeof(uint64_t));
        return mpscq_ring_release(x->ring) == MPSCQ_OK ? 0 : -1;
    }
    case T_PIPE:
        for (size_t got = 0; got < n;) {
            ssize_t r = read(x->fd[0], m + got, n - got);
            if (r <= 0 && !(r < 0 && errno == EINTR))
                return -1;
            if (r > 0)
                got += (size_t)r;
        }
        return 0;
    case T_SEQPACKET:
        for (;;) {
            ssize_t r = read(x->fd[0], m, n);
            if (r == (ssize_t)n)
                return 0;
            if (!(r < 0 && errno == EINTR))
                return -1;
        }
    case T_MQUEUE:
        for (;;) {
            ssize_t r = mq_receive(x->mq, (char *)m, n, NULL);
            if (r == (ssize_t)n)
                return 0;
            if (!(r < 0 && errno == EINTR))
                return -1;
        }
    case T_MUTEX: {
        struct shm_mutex_ring *r = x->shm;
        pthread_mutex_lock(&r->lock);
        while (r->tail == r->head)
            pthread_cond_wait(&r->not_empty, &r->lock);
        memcpy(m, r->data + (r->head % r->slots) * r->size, n);
        r->head++;
        pthread_cond_signal(&r->not_full);
        pthread_mutex_unlock(&r->lock);
        return 0;
    }
    default: { /* T_SPSC */
        struct shm_spsc *s = x->shm;
        uint64_t h = atomic_load_explicit(&s->head, memory_order_relaxed);
        unsigned b = 0;
        /* acquire: the producer's copy */
        while (x->spsc_tail_seen == h) {
            x->spsc_tail_seen = atomic_load_explicit(&s->tail, memory_order_acquire);
            if (x->spsc_tail_seen == h)
                backoff(&b);
        }
        memcpy(m, s->data + (h % s->slots) * s->size, n);
        atomic_store_explicit(&s->head, h + 1, memory_order_release);
        return 0;
    }
    }
}

static void producer(struct ipc_run *x, unsigned id)
{
    unsigned char m[MAXSZ];
    memset(m, 0x5a, sizeof m);
    if (x->kind == T_PIPE || x->kind == T_SEQPACKET)
        close(x->fd[0]);
    /* acquire: the consumer is ready */
    while (!atomic_load_explicit(x->go, memory_order_acquire))
        sched_yield();
    for (uint64_t seq = 0; seq < x->per; seq++) {
        uint64_t tag = (uint64_t)id << 48 | seq;
        memcpy(m, &tag, sizeof tag);
        if (send_one(x, m) != 0)
            _exit(1);
    }
    _exit(0);
}

/* One run: million messages per second, or a negative value when it
 * failed (-1 could not run, -2 a delivery error). */
static double run_once(int kind, size_t size, unsigned producers, uint64_t total)
{
    struct ipc_run x = { .kind = kind, .size = size, .producers = producers,
                         .per = total / producers };
    x.go = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (x.go == MAP_FAILED)
        return -1;
    if (setup(&x) != 0) {
        munmap((void *)x.go, 4096);
        return -1;
    }
    pid_t pid[64];
    unsigned forked = 0;
    for (; forked < producers; forked++) {
        pid[forked] = fork();
        if (pid[forked] == 0)
            producer(&x, forked);
        if (pid[forked] < 0)
            break;
    }
    double result = -1;
    uint64_t *next = calloc(producers, sizeof *next);
    if (forked == producers && next) {
        unsigned char m[MAXSZ];
        uint64_t t0 = bench_now_ns();
        /* release: the producers see a ready consumer */
        atomic_store_explicit(x.go, 1, memory_order_release);
        uint64_t got = 0, want = x.per * producers;
        int bad = 0;
        for (; got < want; got++) {
            if (recv_one(&x, m) != 0) {
                bad = 1;
                break;
            }
            uint64_t tag;
            memcpy(&tag, m, sizeof tag);
            unsigned id = (unsigned)(tag >> 48);
            if (id >= producers || (tag & ((UINT64_C(1) << 48) - 1)) != next[id]) {
                bad = 2;
                break;
            }
            next[id]++;
        }
        double s = (double)(bench_now_ns() - t0) / 1e9;
        result = bad == 1 ? -1 : bad ? -2 : (double)want / s / 1e6;
    }
    for (unsigned i = 0; i < forked; i++) {
        int st;
        if (result < 0)
            kill(pid[i], SIGKILL);
        waitpid(pid[i], &st, 0);
        if (result >= 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
            result = -1;
    }
    free(next);
    teardown(&x);
    munmap((void *)x.go, 4096);
    return result;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int bench_ipc(FILE *out, int repeats, uint64_t messages)
{
    static const size_t sizes[] = { 64, 1024 };
    static const unsigned prods[] = { 1, 4 };
    enum { NC = 4 };
    double med[NT][NC];
    int status = 0;
    uint64_t total = messages;
    fprintf(out, "\nInterprocess: producer processes -> one consumer process, %llu messages a run, "
                 "median of %d runs, million msg/s\n",
            (unsigned long long)total, repeats);
    fprintf(out, "%-16s %12s %12s %12s %12s\n", "transport", "64 B, 1P", "64 B, 4P", "1 KiB, 1P",
            "1 KiB, 4P");
    for (int k = 0; k < NT; k++) {
        fprintf(out, "%-16s", tname[k]);
        for (int c = 0; c < NC; c++) {
            size_t size = sizes[c / 2];
            unsigned np = prods[c % 2];
            med[k][c] = -1;
            if (k == T_SPSC && np != 1) {
                fprintf(out, " %12s", "-");
                continue;
            }
            double v[64];
            int n = 0, failed = 0;
            for (int r = 0; r < repeats && r < 64; r++) {
                double x = run_once(k, size, np, total);
                if (x == -2)
                    failed = 2;
                else if (x < 0 && !failed)
                    failed = 1;
                else if (x >= 0)
                    v[n++] = x;
            }
            if (failed == 2) {
                fprintf(out, " %12s", "FAILED");
                status = 1;
            } else if (!n) {
                fprintf(out, " %12s", "n/a");
            } else {
                qsort(v, (size_t)n, sizeof v[0], cmp);
                med[k][c] = v[n / 2];
                fprintf(out, " %12.2f", med[k][c]);
            }
            fflush(out);
        }
        fprintf(out, "\n");
    }
    /* The ratios, from this run. */
    for (int c = 0; c < NC; c++) {
        double best = -1;
        int bk = -1;
        for (int k = T_PIPE; k <= T_MQUEUE; k++)
            if (med[k][c] > best) {
                best = med[k][c];
                bk = k;
            }
        if (med[T_RING][c] > 0 && best > 0)
            fprintf(out, "mpscq_ring / best of pipe, socket, mqueue (%s, %s): %.1fx (%s)\n",
                    c / 2 ? "1 KiB" : "64 B", c % 2 ? "4P" : "1P", med[T_RING][c] / best,
                    tname[bk]);
    }
    for (int c = 1; c < NC; c += 2)
        if (med[T_RING][c] > 0 && med[T_MUTEX][c] > 0)
            fprintf(out, "mpscq_ring / shm-mutex-ring (%s, 4P): %.2fx\n", c / 2 ? "1 KiB" : "64 B",
                    med[T_RING][c] / med[T_MUTEX][c]);
    for (int k = T_RING; k <= T_RING_PEEK; k++)
        for (int c = 0; c < NC; c += 2)
            if (med[k][c] > 0 && med[T_SPSC][c] > 0)
                fprintf(out, "%s / shm-spsc-ring (%s, 1P): %.2fx\n", tname[k],
                        c / 2 ? "1 KiB" : "64 B", med[k][c] / med[T_SPSC][c]);
    return status;
}
