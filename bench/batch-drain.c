/*
 * batch-drain.c - time from the start of one mpscq_enqueue_batch of N
 * messages (default 160 000) until the consumer has taken all of them,
 * when the consumer polls while the batch is written ("overtaken": it
 * passes tickets whose head is not written yet) and when it starts after
 * the batch returned.  Best of 5.  Every message is checked, in order.
 * design.md s. 8, "The passed set's cost".  make bench-micro.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "mpscq.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static mpscq_t *q;
static size_t n;
static void **msgs;
static _Atomic int go;
static _Atomic int rc;

static void *producer(void *p)
{
    (void)p;
    while (!atomic_load(&go))
        ;
    atomic_store(&rc, mpscq_enqueue_batch(q, msgs, n));
    return NULL;
}

static double run(int overtake)
{
    double best = 1e9;
    for (int rep = 0; rep < 5; rep++) {
        void *m;
        if (mpscq_create(&q, NULL) != MPSCQ_OK)
            exit(3);
        pthread_t t;
        atomic_store(&go, 0);
        pthread_create(&t, NULL, producer, NULL);
        double t0 = now();
        atomic_store(&go, 1);
        if (!overtake)
            pthread_join(t, NULL);
        for (size_t got = 0; got < n;) {
            if (mpscq_dequeue(q, &m) != MPSCQ_OK)
                continue;
            if (m != msgs[got])
                exit(1);
            got++;
        }
        double dt = now() - t0;
        if (overtake)
            pthread_join(t, NULL);
        if (atomic_load(&rc) != MPSCQ_OK)
            exit(1);
        if (dt < best)
            best = dt;
        mpscq_destroy(q, NULL, NULL);
    }
    return best;
}

int main(int argc, char **argv)
{
    n = argc > 1 ? strtoul(argv[1], NULL, 10) : 160000;
    if (n == 0)
        return 2;
    msgs = malloc(n * sizeof *msgs);
    if (!msgs)
        return 3;
    for (size_t i = 0; i < n; i++)
        msgs[i] = (void *)(uintptr_t)(i + 1);
    printf("batch of %zu, consumer polling during the write: %8.3f ms\n", n, run(1) * 1e3);
    printf("batch of %zu, consumer after the write:          %8.3f ms\n", n, run(0) * 1e3);
    free(msgs);
    return 0;
}
