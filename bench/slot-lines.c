/*
 * slot-lines.c - what sharing cache lines costs a fetch-and-add queue,
 * without the library: P producer threads take tickets with one atomic
 * fetch-and-add on a shared counter and write (value, state) at the
 * ticket's slot; a consumer (or none) reads the slots in ticket order.
 * It isolates the coherence traffic that bounds libmpscq's producers on
 * a 2-CPU machine (doc/performance.md, "Where the producers' time goes").
 *
 *   slot-lines MODE LAYOUT P N
 *   MODE    xadd       the fetch-and-add alone, no slot written
 *           producers  tickets and slot writes, no consumer
 *           pair       and a consumer that waits on each slot in order
 *                      (PAUSE), never reading the ticket counter
 *           tailpoll   as pair, but the consumer reads the ticket counter
 *                      each time it finds its slot not yet written (as a
 *                      consumer that must tell "empty" from "a producer
 *                      between ticket and write" does)
 *   LAYOUT  adjacent   a value array and a state-byte array, slot = ticket
 *                      (libmpscq's layout until 2026-12-07: 8 values,
 *                      64 states a line)
 *           rows       the same arrays, consecutive tickets spread over 16
 *                      rows of each 1024-slot segment (16 lines apart)
 *           cell       16-byte cells, value and state in one line (4 a line)
 *           line7      64-byte lines of 7 values and their 7 state bytes
 *                      (one line per message as cell, 9.14 bytes a slot;
 *                      libmpscq's layout since 2026-12-07)
 *   P       producers (1-64), N messages each.
 *
 * Prints million messages per second (wall time; the arrays' pages are
 * touched before the clock starts, as the queue's pooled segments are).  Verifies every
 * message the consumer reads.  make bench/slot-lines; not run by make
 * check (figures, not behaviour).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEG_SHIFT 10 /* 1024 slots, libmpscq's default segment */
#define ROW_SHIFT 4  /* rows: 16 of them */

enum mode { XADD, PRODUCERS, PAIR, TAILPOLL };
enum layout { ADJACENT, ROWS, CELL, LINE7 };

struct cell {
    void *v;
    _Atomic uint64_t s;
};

static _Alignas(64) _Atomic uint64_t tail;
static enum mode mode;
static enum layout layout;
static void **vals;
static _Atomic unsigned char *states;
static struct cell *cells;
/* line7: ticket t is value t % 7 of line t / 7, its state byte beside. */
struct line7 {
    void *v[7];
    _Atomic unsigned char s[8];
};
static struct line7 *lines;
static uint64_t per, total;

static void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ __volatile__("pause");
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static size_t slot(uint64_t t)
{
    if (layout != ROWS)
        return (size_t)t;
    uint64_t seg = t >> SEG_SHIFT, i = t & ((1u << SEG_SHIFT) - 1);
    uint64_t row = i & ((1u << ROW_SHIFT) - 1), col = i >> ROW_SHIFT;
    return (size_t)((seg << SEG_SHIFT) | (row << (SEG_SHIFT - ROW_SHIFT)) | col);
}

static void *producer(void *arg)
{
    (void)arg;
    for (uint64_t n = 0; n < per; n++) {
        /* seq_cst: the queue's ticket is a full barrier (LOCK XADD). */
        uint64_t t = atomic_fetch_add_explicit(&tail, 1, memory_order_seq_cst);
        if (mode == XADD)
            continue;
        void *v = (void *)(uintptr_t)(t + 1);
        size_t i = slot(t);
        /* Release: the value before the state, as the queue publishes. */
        if (layout == CELL) {
            cells[i].v = v;
            atomic_store_explicit(&cells[i].s, 1, memory_order_release);
        } else if (layout == LINE7) {
            lines[i / 7].v[i % 7] = v;
            atomic_store_explicit(&lines[i / 7].s[i % 7], 1, memory_order_release);
        } else {
            vals[i] = v;
            atomic_store_explicit(&states[i], 1, memory_order_release);
        }
    }
    return NULL;
}

static int written(size_t i)
{
    /* Acquire: pairs with the producer's release store of the state. */
    if (layout == CELL)
        return atomic_load_explicit(&cells[i].s, memory_order_acquire) != 0;
    if (layout == LINE7)
        return atomic_load_explicit(&lines[i / 7].s[i % 7], memory_order_acquire) != 0;
    return atomic_load_explicit(&states[i], memory_order_acquire) != 0;
}

static void *consumer(void *arg)
{
    uint64_t *bad = arg;
    for (uint64_t t = 0; t < total; t++) {
        size_t i = slot(t);
        while (!written(i)) {
            /* Relaxed: the read itself is the cost being measured. */
            if (mode == TAILPOLL && atomic_load_explicit(&tail, memory_order_relaxed) == t)
                continue;
            relax();
        }
        void *v = layout == CELL ? cells[i].v : layout == LINE7 ? lines[i / 7].v[i % 7] : vals[i];
        if (v != (void *)(uintptr_t)(t + 1))
            ++*bad;
    }
    return NULL;
}

static int usage(void)
{
    fprintf(stderr, "usage: slot-lines xadd|producers|pair|tailpoll adjacent|rows|cell|line7 P N\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc != 5)
        return usage();
    static const char *modes[] = { "xadd", "producers", "pair", "tailpoll" };
    static const char *layouts[] = { "adjacent", "rows", "cell", "line7" };
    int m = -1, l = -1;
    for (int k = 0; k < 4; k++)
        if (!strcmp(argv[1], modes[k]))
            m = k;
    for (int k = 0; k < 4; k++)
        if (!strcmp(argv[2], layouts[k]))
            l = k;
    int np = atoi(argv[3]);
    per = strtoull(argv[4], NULL, 10);
    if (m < 0 || l < 0 || np < 1 || np > 64 || per < 1)
        return usage();
    mode = (enum mode)m;
    layout = (enum layout)l;
    total = (uint64_t)np * per;
    size_t n = (size_t)((total >> SEG_SHIFT) + 1) << SEG_SHIFT;
    if (layout == CELL)
        cells = calloc(n, sizeof *cells);
    else if (layout == LINE7)
        lines = aligned_alloc(64, (n / 7 + 1) * sizeof *lines);
    else {
        vals = calloc(n, sizeof *vals);
        states = calloc(n, 1);
    }
    if (layout == CELL ? !cells : layout == LINE7 ? !lines : !vals || !states)
        return 3;
    /* Touched before the clock starts: the queue's pool hands out
     * segments whose pages are mapped already. */
    if (layout == CELL)
        memset(cells, 0, n * sizeof *cells);
    else if (layout == LINE7)
        memset(lines, 0, (n / 7 + 1) * sizeof *lines);
    else {
        memset(vals, 0, n * sizeof *vals);
        memset((void *)states, 0, n);
    }

    pthread_t th[64], ct;
    uint64_t bad = 0;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int with_consumer = mode == PAIR || mode == TAILPOLL;
    if (with_consumer && pthread_create(&ct, NULL, consumer, &bad))
        return 3;
    for (int p = 0; p < np; p++)
        if (pthread_create(&th[p], NULL, producer, NULL))
            return 3;
    for (int p = 0; p < np; p++)
        pthread_join(th[p], NULL);
    if (with_consumer)
        pthread_join(ct, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
    printf("%s %s %dP %.1f M msg/s\n", argv[1], argv[2], np, (double)total / s / 1e6);
    if (bad) {
        fprintf(stderr, "slot-lines: %llu messages read wrong\n", (unsigned long long)bad);
        return 1;
    }
    free(vals);
    free((void *)states);
    free(cells);
    free(lines);
    return 0;
}
