/*
 * stress.c - `make stress`: exact delivery across a matrix of shapes with
 * hostile scheduling.
 *
 * Matrix: producers {1, 2, 4, 8, 16} x capacity {unbounded, 64} x segment
 * slots {2, 16, 1024}, each producer mixing single and batch enqueues with
 * random short spins and sched_yield() between them; plus runs in which
 * one producer is held for STALL_MS milliseconds between its ticket and
 * its slot write (a test hook) while the others keep going.  Every run
 * checks no loss, no duplicate, per-producer FIFO and batch contiguity.
 *
 *   stress [-q] [-n MESSAGES_PER_PRODUCER] [-s SEED]    (-q: the CI size)
 * Prints one line per run and a summary line; exits 1 on any error.
 */
#include "config.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mpscq.h"
#include "internal.h"
#include "arch.h"

#define STALL_MS 300
#define MAXP 16

static unsigned long errors;

static void fail(const char *what, unsigned run)
{
    fprintf(stderr, "stress: run %u: %s\n", run, what);
    errors++;
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

struct prod {
    mpscq_t *q;
    unsigned id;
    uint64_t n;
    uint64_t seed;
    int stall;          /* hold this producer once, mid-enqueue */
    unsigned long full; /* FULL answers seen */
};

static _Thread_local int stall_armed;
static _Atomic int stalled_now;

static void hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    (void)t;
    if (where != MPSCQ_HOOK_AFTER_TICKET || !stall_armed)
        return;
    stall_armed = 0;
    atomic_store(&stalled_now, 1);
    struct timespec ts = { 0, STALL_MS * 1000000L };
    nanosleep(&ts, NULL); /* the stall under test, not a wait for a result */
    atomic_store(&stalled_now, 0);
}

static void *producer(void *p)
{
    struct prod *a = p;
    uint64_t i = 0, s = a->seed;
    void *buf[8];
    while (i < a->n) {
        uint64_t r = xorshift(&s);
        if (a->stall && i >= a->n / 3) {
            a->stall = 0;
            stall_armed = 1; /* this producer's next enqueue is held */
        }
        size_t k = 1;
        int rc;
        if (r % 5 == 0) {
            k = 1 + (size_t)(r >> 8) % 8;
            if (k > a->n - i)
                k = (size_t)(a->n - i);
            for (size_t j = 0; j < k; j++)
                buf[j] = (void *)(((uintptr_t)a->id << 48) | (uintptr_t)(i + j) | ((uintptr_t)(j ? 1 : 0) << 47));
            rc = mpscq_enqueue_batch(a->q, buf, k);
        } else {
            rc = mpscq_enqueue(a->q, (void *)(((uintptr_t)a->id << 48) | (uintptr_t)i));
        }
        if (rc == MPSCQ_FULL) {
            a->full++;
            sched_yield();
            continue;
        }
        if (rc != MPSCQ_OK)
            return (void *)1;
        i += k;
        if ((r >> 20) % 16 == 0)
            sched_yield();
        else if ((r >> 20) % 16 == 1)
            mpscq_arch_pause_loop_base((r >> 32) % 2000);
    }
    return NULL;
}

static uint64_t run(unsigned id, unsigned P, size_t cap, size_t slots, uint64_t n,
                    uint64_t seed, int stall)
{
    mpscq_config c;
    mpscq_config_init(&c);
    c.capacity = cap;
    c.segment_slots = slots;
    mpscq_t *q;
    if (mpscq_create(&q, &c) != MPSCQ_OK) {
        fail("create", id);
        return 0;
    }
    pthread_t th[MAXP];
    struct prod a[MAXP];
    for (unsigned p = 0; p < P; p++) {
        a[p] = (struct prod){ q, p, n, seed * 1000003u + p + 1, stall && p == 0, 0 };
        pthread_create(&th[p], NULL, producer, &a[p]);
    }
    uint64_t next[MAXP] = { 0 }, got = 0, total = n * P;
    unsigned last_p = MAXP;
    int in_batch_ok = 1;
    unsigned long got_while_stalled = 0;
    while (got < total) {
        void *m;
        int rc = mpscq_dequeue(q, &m);
        if (rc == MPSCQ_EMPTY) {
            sched_yield();
            continue;
        }
        if (rc != MPSCQ_OK) {
            fail("dequeue status", id);
            break;
        }
        uintptr_t v = (uintptr_t)m;
        unsigned p = (unsigned)(v >> 48);
        uint64_t seq = v & (((uintptr_t)1 << 47) - 1);
        int follows = (int)((v >> 47) & 1);
        if (p >= P || seq != next[p]) {
            fail("loss, duplicate or per-producer order", id);
            break;
        }
        if (follows && last_p != p)
            in_batch_ok = 0;
        next[p]++;
        last_p = p;
        got++;
        if (atomic_load(&stalled_now))
            got_while_stalled++;
    }
    for (unsigned p = 0; p < P; p++)
        if (pthread_join(th[p], NULL) == 0 && next[p] != n)
            fail("a producer's messages missing", id);
    if (!in_batch_ok)
        fail("batch not contiguous", id);
    /* The consumer kept receiving while one producer was held. */
    if (stall && got_while_stalled == 0)
        fail("no message delivered while a producer was stalled", id);
    void *m;
    if (mpscq_dequeue(q, &m) != MPSCQ_EMPTY)
        fail("extra message", id);
    unsigned long full = 0;
    for (unsigned p = 0; p < P; p++)
        full += a[p].full;
    printf("run %3u: P=%2u cap=%-4zu slots=%-4zu stall=%d  %8llu messages  %6lu FULL  %s\n",
           id, P, cap, slots ? slots : 1024, stall, (unsigned long long)got, full,
           errors ? "ERROR" : "ok");
    if (stall)
        printf("         %lu messages delivered while producer 0 was held %d ms\n",
               got_while_stalled, STALL_MS);
    mpscq_destroy(q, NULL, NULL);
    return got;
}

int main(int argc, char **argv)
{
    int quick = 0, opt;
    uint64_t n = 0, seed = (uint64_t)time(NULL);
    while ((opt = getopt(argc, argv, "qn:s:")) != -1) {
        if (opt == 'q')
            quick = 1;
        else if (opt == 'n')
            n = strtoull(optarg, NULL, 10);
        else if (opt == 's')
            seed = strtoull(optarg, NULL, 0);
        else {
            fprintf(stderr, "usage: %s [-q] [-n messages] [-s seed]\n", argv[0]);
            return 2;
        }
    }
    if (!n)
        n = quick ? 3000 : 50000;
    printf("stress: seed %llu (replay with -s), %llu messages per producer\n",
           (unsigned long long)seed, (unsigned long long)n);
    mpscq_test_hook = hook;
    static const unsigned Ps[] = { 1, 2, 4, 8, 16 };
    static const size_t caps[] = { 0, 64 };
    static const size_t slots[] = { 2, 16, 1024 };
    unsigned runs = 0;
    uint64_t msgs = 0;
    for (size_t i = 0; i < 5; i++)
        for (size_t j = 0; j < 2; j++)
            for (size_t k = 0; k < 3; k++, runs++)
                msgs += run(runs, Ps[i], caps[j], slots[k], n, seed + runs, 0);
    /* A producer held mid-enqueue for STALL_MS, at 4 and 16 producers. */
    msgs += run(runs, 4, 0, 2, n, seed + runs, 1);
    runs++;
    msgs += run(runs, 16, 64, 16, n, seed + runs, 1);
    runs++;
    printf("stress: %u runs, %llu messages, %lu errors\n", runs,
           (unsigned long long)msgs, errors);
    return errors ? 1 : 0;
}
