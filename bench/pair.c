/*
 * pair.c - the hot paths alone, for comparing the asm and C builds.
 * Built twice: bench/pair-asm (libmpscq.la) and bench/pair-c (a C-only
 * build of the same sources).  bench/asm-vs-c.sh runs both.
 *
 *   pair pairs N       N enqueue+dequeue pairs on one thread (the loop is
 *                      the function run_pairs, for callgrind's
 *                      --toggle-collect); prints ns per pair
 *   pair mt P N        P producers, 1 consumer, N messages in total;
 *                      prints million messages/s
 *   pair lanes N       as pairs, through a queue set of three lanes
 *                      with the messages in the lowest (run_lanes): the
 *                      set's cost over one queue
 *   pair ring N SIZE   N mpscq_ring_write + mpscq_ring_read pairs of SIZE
 *                      bytes on one thread (run_ring: the ring's producer
 *                      fast paths, which have the asm and C twins)
 *
 * Environment: PAIR_SLOTS=N sets segment_slots; PAIR_STATS=1 prints the
 * queue's segment counters after an mt run (on stderr).
 */
#include <mpscq.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

__attribute__((noinline)) uintptr_t run_pairs(mpscq_t *q, uint64_t n);

__attribute__((noinline)) uintptr_t run_pairs(mpscq_t *q, uint64_t n)
{
    uintptr_t sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        void *m;
        mpscq_enqueue(q, (void *)(uintptr_t)i);
        mpscq_dequeue(q, &m);
        sum += (uintptr_t)m;
    }
    return sum;
}

__attribute__((noinline)) uintptr_t run_lanes(mpscq_set_t *s, mpscq_t *q, uint64_t n);

__attribute__((noinline)) uintptr_t run_lanes(mpscq_set_t *s, mpscq_t *q, uint64_t n)
{
    uintptr_t sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        void *m;
        mpscq_enqueue(q, (void *)(uintptr_t)i);
        mpscq_set_dequeue_wait(s, NULL, &m, 0);
        sum += (uintptr_t)m;
    }
    return sum;
}

__attribute__((noinline)) uintptr_t run_ring(mpscq_ring_t *r, uint64_t n, size_t size);

__attribute__((noinline)) uintptr_t run_ring(mpscq_ring_t *r, uint64_t n, size_t size)
{
    uint8_t m[4096], out[4096];
    uintptr_t sum = 0;
    memset(m, 0, size);
    for (uint64_t i = 0; i < n; i++) {
        size_t len;
        m[0] = (uint8_t)i;
        if (mpscq_ring_write(r, m, size) != MPSCQ_OK ||
            mpscq_ring_read(r, out, sizeof out, &len) != MPSCQ_OK || len != size)
            return 0;
        sum += out[0] + 1u;
    }
    return sum;
}

struct prod {
    mpscq_t *q;
    uint64_t n;
    unsigned id;
};

static void *producer(void *p)
{
    struct prod *a = p;
    for (uint64_t i = 0; i < a->n; i++)
        mpscq_enqueue(a->q, (void *)(((uintptr_t)a->id << 40) | (uintptr_t)i));
    return NULL;
}

int main(int argc, char **argv)
{
    mpscq_t *q;
    mpscq_config cfg;
    mpscq_config_init(&cfg);
    if (getenv("PAIR_SLOTS"))
        cfg.segment_slots = strtoull(getenv("PAIR_SLOTS"), NULL, 10);
    /* pairs N CAPACITY: the same on a bounded queue. */
    if (argc == 4 && strcmp(argv[1], "pairs") == 0)
        cfg.capacity = strtoull(argv[3], NULL, 10);
    if (mpscq_create(&q, &cfg) != MPSCQ_OK)
        return 1;
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "pairs") == 0) {
        uint64_t n = strtoull(argv[2], NULL, 10);
        run_pairs(q, 1000); /* register the thread, warm the segment */
        uint64_t t0 = now_ns();
        uintptr_t sum = run_pairs(q, n);
        double ns = (double)(now_ns() - t0) / (double)n;
        if (sum != (uintptr_t)(n * (n - 1) / 2))
            return 2;
        printf("%s pairs %llu ns/pair %.2f\n", mpscq_implementation(), (unsigned long long)n, ns);
    } else if (argc == 3 && strcmp(argv[1], "lanes") == 0) {
        uint64_t n = strtoull(argv[2], NULL, 10);
        mpscq_set_t *s;
        mpscq_t *hi, *mid;
        if (mpscq_set_create(&s) || mpscq_create(&hi, &cfg) || mpscq_create(&mid, &cfg) ||
            mpscq_set_add(s, hi, 0) || mpscq_set_add(s, mid, 1) || mpscq_set_add(s, q, 2))
            return 1;
        run_lanes(s, q, 1000);
        uint64_t t0 = now_ns();
        uintptr_t sum = run_lanes(s, q, n);
        double ns = (double)(now_ns() - t0) / (double)n;
        if (sum != (uintptr_t)(n * (n - 1) / 2))
            return 2;
        printf("%s lanes %llu ns/pair %.2f\n", mpscq_implementation(), (unsigned long long)n, ns);
        mpscq_set_destroy(s);
        mpscq_destroy(hi, NULL, NULL);
        mpscq_destroy(mid, NULL, NULL);
    } else if (argc == 4 && strcmp(argv[1], "ring") == 0) {
        uint64_t n = strtoull(argv[2], NULL, 10);
        size_t size = strtoull(argv[3], NULL, 10);
        mpscq_ring_t *r;
        if (size < 1 || size > 4096 || n < 1)
            return 2;
        mpscq_ring_config rc;
        mpscq_ring_config_init(&rc);
        rc.max_message = 4096;
        if (mpscq_ring_create(&r, NULL, &rc) != MPSCQ_OK)
            return 1;
        run_ring(r, 1000, size); /* register the thread, warm the chunks */
        uint64_t t0 = now_ns();
        uintptr_t sum = run_ring(r, n, size);
        double ns = (double)(now_ns() - t0) / (double)n;
        uintptr_t want = 0;
        for (uint64_t i = 0; i < n; i++)
            want += (uint8_t)i + 1u;
        if (sum != want)
            return 2;
        printf("%s ring %llu %zu ns/pair %.2f\n", mpscq_implementation(), (unsigned long long)n,
               size, ns);
        mpscq_ring_detach(r);
    } else if (argc == 4 && strcmp(argv[1], "mt") == 0) {
        unsigned P = (unsigned)atoi(argv[2]);
        uint64_t n = strtoull(argv[3], NULL, 10) / P;
        pthread_t th[64];
        struct prod a[64];
        if (P < 1 || P > 64)
            return 2;
        uint64_t next[64] = { 0 }, got = 0, t0 = now_ns();
        for (unsigned p = 0; p < P; p++) {
            a[p] = (struct prod){ q, n, p };
            pthread_create(&th[p], NULL, producer, &a[p]);
        }
        while (got < n * P) {
            void *m;
            if (mpscq_dequeue(q, &m) != MPSCQ_OK)
                continue;
            uintptr_t v = (uintptr_t)m;
            if ((v & (((uintptr_t)1 << 40) - 1)) != next[v >> 40]++)
                return 3; /* per-producer FIFO broken */
            got++;
        }
        double mps = (double)got / ((double)(now_ns() - t0) / 1e9) / 1e6;
        for (unsigned p = 0; p < P; p++)
            pthread_join(th[p], NULL);
        printf("%s mt %u %.2f\n", mpscq_implementation(), P, mps);
        if (getenv("PAIR_STATS")) {
            struct mpscq_stats st;
            mpscq_stats(q, &st);
            fprintf(stderr, "segments allocated %llu recycled %llu freed %llu, cas failures %llu\n",
                    st.segments_allocated, st.segments_recycled, st.segments_freed, st.cas_failures);
        }
    } else {
        fprintf(stderr, "usage: %s pairs N [CAPACITY] | lanes N | ring N SIZE | mt P N\n", argv[0]);
        return 2;
    }
    mpscq_destroy(q, NULL, NULL);
    return 0;
}
