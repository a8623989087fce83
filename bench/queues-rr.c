/*
 * queues-rr.c - ns per mpscq_enqueue when one thread enqueues round-robin
 * over K queues (K = 1, 8, 9, 16, 64), best of 5 runs of 2^20 enqueues.
 * A per-thread cache of records that is smaller than K used to show here
 * as a cliff (design.md s. 4, "Finding one's record").  make bench-micro.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "mpscq.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(void)
{
    static const int ks[] = { 1, 8, 9, 16, 64 };
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
        int k = ks[ki];
        mpscq_t *q[64];
        for (int i = 0; i < k; i++)
            if (mpscq_create(&q[i], NULL) != MPSCQ_OK)
                return 3;
        double best = 1e9;
        for (int rep = 0; rep < 5; rep++) {
            const long n = 1L << 20;
            double t0 = now();
            for (long j = 0; j < n; j++)
                if (mpscq_enqueue(q[j % k], (void *)(uintptr_t)j) != MPSCQ_OK)
                    return 1;
            double ns = (now() - t0) / (double)n * 1e9;
            if (ns < best)
                best = ns;
            void *m;
            for (int i = 0; i < k; i++)
                while (mpscq_dequeue(q[i], &m) == MPSCQ_OK)
                    ;
        }
        printf("round-robin over %2d queues: %6.1f ns per enqueue\n", k, best);
        for (int i = 0; i < k; i++)
            mpscq_destroy(q[i], NULL, NULL);
    }
    return 0;
}
