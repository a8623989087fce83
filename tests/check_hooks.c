/* check_hooks.c - tests that need the test library (libmpscq_test.la):
 * the wait-freedom bound in atomic read-modify-writes, producers stopped
 * mid-enqueue, and the contention warning. */
#include "config.h"

#include <stdio.h>
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "internal.h"

/* ---- RMW counting -------------------------------------------------- */

#define HIST 64
struct rmw_arg {
    mpscq_t *q;
    unsigned id;
    uint64_t n;
    size_t batch;
    struct tu_barrier *start;
    unsigned long hist[HIST];
    unsigned long max;
};

static void *rmw_producer(void *p)
{
    struct rmw_arg *a = p;
    /* The first call registers this thread's record: not measured. */
    void *warm[1] = { tu_msg(a->id, 0) };
    ck_assert_int_eq(mpscq_enqueue(a->q, warm[0]), MPSCQ_OK);
    tu_barrier_wait(a->start);
    void *buf[16];
    for (uint64_t i = 1; i < a->n;) {
        unsigned long before = mpscq_rmw_count;
        int rc;
        size_t k = 1;
        if (a->batch > 1) {
            k = a->batch;
            if (k > a->n - i)
                k = (size_t)(a->n - i);
            for (size_t j = 0; j < k; j++)
                buf[j] = tu_msg(a->id, i + j);
            rc = mpscq_enqueue_batch(a->q, buf, k);
        } else {
            rc = mpscq_enqueue(a->q, tu_msg(a->id, i));
        }
        unsigned long used = mpscq_rmw_count - before;
        if (rc == MPSCQ_FULL) {
            sched_yield();
            continue;
        }
        ck_assert_int_eq(rc, MPSCQ_OK);
        a->hist[used < HIST ? used : HIST - 1]++;
        if (used > a->max)
            a->max = used;
        i += k;
    }
    return NULL;
}

/* 16 producers against one consumer; returns the histogram. */
static void rmw_run(size_t slots, size_t cap, size_t batch, unsigned long *hist,
                    unsigned long *max)
{
    const unsigned P = 16;
    uint64_t n = tu_scaled(20000, 300);
    mpscq_config c;
    mpscq_config_init(&c);
    c.segment_slots = slots;
    c.capacity = cap;
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    pthread_t th[16];
    struct rmw_arg *a = calloc(P, sizeof *a);
    struct tu_barrier start;
    tu_barrier_init(&start, (int)P);
    uint64_t expected[16];
    for (unsigned p = 0; p < P; p++) {
        a[p].q = q;
        a[p].id = p;
        a[p].n = n;
        a[p].batch = batch;
        a[p].start = &start;
        expected[p] = n;
        ck_assert_int_eq(pthread_create(&th[p], NULL, rmw_producer, &a[p]), 0);
    }
    tu_drain_verify(q, P, expected);
    memset(hist, 0, HIST * sizeof *hist);
    *max = 0;
    for (unsigned p = 0; p < P; p++) {
        pthread_join(th[p], NULL);
        for (int h = 0; h < HIST; h++)
            hist[h] += a[p].hist[h];
        if (a[p].max > *max)
            *max = a[p].max;
    }
    free(a);
    mpscq_destroy(q, NULL, NULL);
}

static unsigned long median(const unsigned long *hist)
{
    unsigned long total = 0, acc = 0;
    for (int h = 0; h < HIST; h++)
        total += hist[h];
    for (int h = 0; h < HIST; h++) {
        acc += hist[h];
        if (acc * 2 >= total)
            return (unsigned long)h;
    }
    return HIST;
}

/* The bound design.md s. 2 derives for one enqueue of n messages into
 * N-slot segments with T tickets held by other enqueues in flight (16
 * producers of `batch` tickets each, here): admission and its rollback
 * (bounded), 4 per spare refilled, the ticket, L <= (T + n) / N + 2
 * links, one hint CAS, one wake. */
static unsigned long rmw_bound(size_t slots, size_t cap, size_t batch)
{
    size_t N = slots ? slots : MPSCQ_SEGMENT_SLOTS_DEFAULT;
    size_t T = 16 * batch;
    (void)cap; /* admission adds none to an admitted enqueue (s. 6) */
    return 4 * (batch / N + 1) + 1 + ((T + batch) / N + 2) + 1 + 1;
}

START_TEST(test_rmw_bound_unbounded)
{
    unsigned long hist[HIST], max;
    rmw_run(0, 0, 1, hist, &max);
    ck_assert_uint_le(max, rmw_bound(0, 0, 1));
    /* The common case is the ticket alone: the hazard publish is a plain
     * store, fenced by the ticket's LOCK XADD (design.md s. 4). */
    ck_assert_uint_eq(median(hist), 1);
    ck_assert_uint_eq(hist[0], 0);
}
END_TEST

START_TEST(test_rmw_bound_tiny_segments)
{
    /* 2-slot segments: almost every enqueue links or refills. */
    unsigned long hist[HIST], max;
    rmw_run(2, 0, 1, hist, &max);
    ck_assert_uint_le(max, rmw_bound(2, 0, 1));
}
END_TEST

START_TEST(test_rmw_bound_bounded)
{
    /* The bound only: how often 16 producers find the queue full, and so
     * how many refused tickets move the next admitted one into a new
     * segment, depends on the scheduler (under Helgrind, which runs one
     * thread at a time, most admitted enqueues link a segment).  The
     * common case is test_bounded_enqueue_one_locked_instruction. */
    unsigned long hist[HIST], max;
    rmw_run(16, 64, 1, hist, &max);
    ck_assert_uint_le(max, rmw_bound(16, 64, 1));
}
END_TEST

START_TEST(test_bounded_enqueue_one_locked_instruction)
{
    /* Bounded admission by ticket adds no locked instruction (design.md
     * s. 6): an admitted enqueue inside a segment is the ticket alone, and
     * a FULL found by the check that takes no ticket costs none. */
    enum { SLOTS = 16, CAP = 64 };
    mpscq_config c;
    mpscq_config_init(&c);
    c.segment_slots = SLOTS;
    c.capacity = CAP;
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    void *m;
    /* Registers this thread's record. */
    ck_assert_int_eq(mpscq_enqueue(q, (void *)1), MPSCQ_OK);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    /* EMPTY publishes the consumer's dequeues (capacity.h): all CAP
     * places are free. */
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    uint64_t t = 1; /* the next ticket */
    for (int round = 0; round < 8; round++) {
        int other = 0;
        for (int i = 0; i < CAP; i++, t++) {
            unsigned long before = mpscq_rmw_count;
            ck_assert_int_eq(mpscq_enqueue(q, (void *)(uintptr_t)(t + 1)), MPSCQ_OK);
            unsigned long used = mpscq_rmw_count - before;
            /* The ticket; + 2 for the first ticket of a segment (its link
             * and the hint CAS); + 2 for a spare taken from the pool (the
             * hazard XCHG and the CMPXCHG16B), when the record ran out. */
            ck_assert_msg(used == 1 || used == 3 || used == 5, "ticket %llu: %lu",
                          (unsigned long long)t, used);
            if (t % SLOTS && used == 5)
                ck_abort_msg("ticket %llu: linked inside a segment", (unsigned long long)t);
            other += used != 1;
        }
        /* At most one link and one refill per segment. */
        ck_assert_int_le(other, 2 * CAP / SLOTS);
        unsigned long before = mpscq_rmw_count;
        ck_assert_int_eq(mpscq_enqueue(q, NULL), MPSCQ_FULL);
        ck_assert_uint_eq(mpscq_rmw_count - before, 0);
        for (int i = 0; i < CAP; i++)
            ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    }
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

START_TEST(test_rmw_bound_batches)
{
    unsigned long hist[HIST], max;
    rmw_run(8, 0, 4, hist, &max);
    ck_assert_uint_le(max, rmw_bound(8, 0, 4));
    /* Batches much longer than a segment: the bound grows with n / N
     * (the 64-message batch on 2-slot segments took 35). */
    rmw_run(2, 0, 8, hist, &max);
    ck_assert_uint_le(max, rmw_bound(2, 0, 8));
}
END_TEST

START_TEST(test_bounded_dequeue_no_locked_instruction)
{
    /* Bounded mode: the consumer publishes its dequeues in batches of
     * capacity / 8 (at most 64) with a plain store, so its dequeues take
     * no locked instruction but the recycling's, per segment.  It used to
     * be a LOCK ADD per message, then one per 64. */
    mpscq_config c;
    mpscq_config_init(&c);
    c.capacity = 1024;
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    void *m;
    for (int round = 0; round < 4; round++) {
        for (uintptr_t i = 0; i < 1024; i++)
            ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
        ck_assert_int_eq(mpscq_enqueue(q, NULL), MPSCQ_FULL);
        unsigned long before = mpscq_rmw_count;
        for (uintptr_t i = 0; i < 1024; i++) {
            ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
            ck_assert_ptr_eq(m, (void *)i);
        }
        unsigned long used = mpscq_rmw_count - before;
        /* At most a hint CAS and a pool push for the drained segment. */
        ck_assert_uint_le(used, 2);
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    }
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* ---- producers stopped mid-enqueue -------------------------------- */

static _Thread_local int stall_me;
static int stall_where;
static _Atomic int stalled, release_stall;

static void stall_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    (void)t;
    if (!stall_me || where != stall_where)
        return;
    stall_me = 0;
    atomic_store(&stalled, 1);
    while (!atomic_load(&release_stall))
        sched_yield();
}

struct staller {
    mpscq_t *q;
    _Atomic int rc; /* read by the main thread while the producer is held */
};

static void *stalled_producer(void *p)
{
    struct staller *s = p;
    stall_me = 1;
    atomic_store(&s->rc, mpscq_enqueue(s->q, tu_msg(7, 0)));
    return NULL;
}

/* Start fn(s) on a thread of its own and return once it is stopped at
 * stall_where (the hook armed by the caller). */
static void start_stalled(void *(*fn)(void *), struct staller *s, pthread_t *th)
{
    atomic_store(&stalled, 0);
    ck_assert_int_eq(pthread_create(th, NULL, fn, s), 0);
    while (!atomic_load(&stalled))
        sched_yield();
}

static void *plain_producer(void *p)
{
    struct prod {
        mpscq_t *q;
        unsigned id;
        uint64_t n;
    } *a = p;
    for (uint64_t i = 0; i < a->n; i++)
        ck_assert_int_eq(mpscq_enqueue(a->q, tu_msg(a->id, i)), MPSCQ_OK);
    return NULL;
}

/* One producer stops at `where`; four others send n messages each through
 * 4-slot segments; the consumer must receive all of theirs while it is
 * stopped, then the stopped one's after it resumes.  Memory held meanwhile
 * must be returned afterwards. */
static void stall_scenario(int where)
{
    struct tu_alloc al;
    tu_alloc_init(&al);
    mpscq_config c;
    mpscq_config_init(&c);
    c.segment_slots = 4;
    tu_config_alloc(&c, &al);
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    atomic_store(&release_stall, 0);
    stall_where = where;
    mpscq_test_hook = stall_hook;

    struct staller s = { q, -1 };
    pthread_t st;
    start_stalled(stalled_producer, &s, &st);
    /* What the queue holds before the others come (struct, directory,
     * records, its first segments): not part of what the stall keeps. */
    long long base = atomic_load(&al.outstanding);
    /* A message enqueued after the stopped one is handed out at once. */
    void *m;
    ck_assert_int_eq(mpscq_enqueue(q, tu_msg(6, 0)), MPSCQ_OK);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(6, 0));
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);

    const unsigned P = 4;
    uint64_t n = tu_scaled(5000, 200);
    struct {
        mpscq_t *q;
        unsigned id;
        uint64_t n;
    } a[4];
    pthread_t th[4];
    for (unsigned p = 0; p < P; p++) {
        a[p].q = q;
        a[p].id = p;
        a[p].n = n;
        ck_assert_int_eq(pthread_create(&th[p], NULL, plain_producer, &a[p]), 0);
    }
    uint64_t expected[4] = { n, n, n, n };
    /* Every other producer's message arrives while one is stopped
     * (tu_drain_verify also checks that nothing else is ready after). */
    tu_drain_verify(q, P, expected);
    for (unsigned p = 0; p < P; p++)
        pthread_join(th[p], NULL);
    ck_assert_int_eq(atomic_load(&stalled), 1);
    ck_assert_int_eq(atomic_load(&s.rc), -1); /* still inside mpscq_enqueue */
    ck_assert_uint_eq(mpscq_size(q), where == MPSCQ_HOOK_BEFORE_TICKET ? 0 : 1);
    long long held = atomic_load(&al.outstanding);

    atomic_store(&release_stall, 1);
    pthread_join(st, NULL);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(s.rc, MPSCQ_OK);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(7, 0));
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    /* With the hazard gone, the segments held for the stopped producer
     * are recycled: push one more segment's worth through. */
    for (uintptr_t i = 0; i < 16; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
    while (mpscq_dequeue(q, &m) == MPSCQ_OK)
        ;
    tu_idle(q); /* the pool goes back to its idle bound */
    /* While stopped, the segments from the stopped producer's on (4n
     * messages in 4-slot segments: n of them) were all kept ... */
    size_t seg = ((struct mpscq *)q)->seg_bytes;
    ck_assert_int_ge(held - base, (long long)n * (long long)seg);
    /* ... and now they are gone. */
    ck_assert_int_lt(atomic_load(&al.outstanding) - base, (held - base) / 8);
    mpscq_destroy(q, NULL, NULL);
    ck_assert_int_eq(atomic_load(&al.outstanding), 0);
}

START_TEST(test_stalled_after_ticket)
{
    stall_scenario(MPSCQ_HOOK_AFTER_TICKET);
}
END_TEST

START_TEST(test_stalled_before_ticket)
{
    /* Stopped holding a hazard on an old segment: its walk, when it
     * resumes, crosses thousands of segments that must still exist. */
    stall_scenario(MPSCQ_HOOK_BEFORE_TICKET);
}
END_TEST

START_TEST(test_stalled_after_hint)
{
    /* Stopped with its hazard narrowed to the hint it read after its
     * ticket: the consumer passes the ticket, recycling keeps every
     * segment from the hinted one on, and all of it is returned after. */
    stall_scenario(MPSCQ_HOOK_AFTER_HINT);
}
END_TEST

/* Two producers take the tickets of segment 1 and stop before linking
 * it; the next ticket's producer then links segments 1 and 2 in one
 * enqueue, with one spare: the second comes from the allocator on the
 * spot (take_spare's last resort, enqueue.c), prepared as every other
 * segment (cleared state bytes, and its atomics declared to Helgrind:
 * check-helgrind runs this).  The hook counts that path: once.
 * Everything arrives once, in order. */
static _Atomic int spare_allocs;

static void stall_count_hook(int where, const struct mpscq *q, uint64_t t)
{
    if (where == MPSCQ_HOOK_SPARE_ALLOCATED)
        atomic_fetch_add(&spare_allocs, 1);
    stall_hook(where, q, t);
}

START_TEST(test_link_beyond_spares)
{
    mpscq_config c;
    mpscq_config_init(&c);
    c.segment_slots = 2;
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(q, tu_msg(0, 0)), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(q, tu_msg(0, 1)), MPSCQ_OK);
    atomic_store(&release_stall, 0);
    atomic_store(&spare_allocs, 0);
    stall_where = MPSCQ_HOOK_AFTER_TICKET;
    mpscq_test_hook = stall_count_hook;
    struct staller s[2] = { { q, -1 }, { q, -1 } };
    pthread_t st[2];
    for (int i = 0; i < 2; i++)
        start_stalled(stalled_producer, &s[i], &st[i]);
    ck_assert_int_eq(atomic_load(&spare_allocs), 0);
    /* Ticket 4: segment 2, past the unlinked segment 1. */
    ck_assert_int_eq(mpscq_enqueue(q, tu_msg(0, 2)), MPSCQ_OK);
    ck_assert_int_eq(atomic_load(&spare_allocs), 1);
    void *m;
    for (uint64_t i = 0; i < 3; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, tu_msg(0, i));
    }
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    atomic_store(&release_stall, 1);
    for (int i = 0; i < 2; i++) {
        pthread_join(st[i], NULL);
        ck_assert_int_eq(atomic_load(&s[i].rc), MPSCQ_OK);
    }
    mpscq_test_hook = NULL;
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, tu_msg(7, 0));
    }
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* ---- the hint overtakes a ticket ----------------------------------- */

static void *batch5_producer(void *p);

/* A producer takes its ticket and stops before reading the hint (its
 * hazard says ALL).  Others then fill `segs` more 4-slot segments, so the
 * hint it reads when it resumes is past its ticket's segment: it must walk
 * back along prev and write its own slot, not the slot with the same index
 * in the hinted segment (which holds another producer's message).  With a
 * batch (`batch` = 1) the walk back is followed by a walk forward across
 * the batch's segments. */
static void hint_overtakes(int batch, unsigned segs)
{
    mpscq_config c;
    mpscq_config_init(&c);
    c.segment_slots = 4;
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    /* Ticket 1: the stopped one's segment also holds messages before and
     * after it. */
    ck_assert_int_eq(mpscq_enqueue(q, tu_msg(0, 0)), MPSCQ_OK);
    atomic_store(&release_stall, 0);
    atomic_store(&mpscq_back_steps, 0);
    stall_where = MPSCQ_HOOK_AFTER_TICKET;
    mpscq_test_hook = stall_hook;
    struct staller s = { q, -1 };
    pthread_t st;
    start_stalled(batch ? batch5_producer : stalled_producer, &s, &st);
    uint64_t n = 1 + 4 * (uint64_t)segs;
    for (uint64_t i = 1; i <= n; i++)
        ck_assert_int_eq(mpscq_enqueue(q, tu_msg(0, i)), MPSCQ_OK);
    /* The hint has moved at least `segs` segments past the stopped
     * ticket's. */
    uint64_t hint_id = atomic_load(&((struct mpscq *)q)->hint)->id;
    ck_assert_uint_ge(hint_id, segs);
    /* The consumer passes the stopped ticket(s) and takes the rest. */
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(0, 0));
    for (uint64_t i = 1; i <= n; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, tu_msg(0, i));
    }
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    atomic_store(&release_stall, 1);
    pthread_join(st, NULL);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(s.rc, MPSCQ_OK);
    unsigned k = batch ? 5 : 1;
    for (uint64_t i = 0; i < k; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, batch ? tu_msg(1, i) : tu_msg(7, 0));
    }
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    /* It got there by walking back (at least segs - 1 steps: the hint
     * may lag one segment behind the last ticket). */
    ck_assert_uint_ge(atomic_load(&mpscq_back_steps), segs - 1);
    /* Nothing the stopped producer wrote landed in a later segment: the
     * queue is empty and every later message came out once, in order.
     * And the queue goes on working across the segments it touched. */
    for (uintptr_t i = 0; i < 64; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
    for (uintptr_t i = 0; i < 64; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)i);
    }
    mpscq_destroy(q, NULL, NULL);
}

START_TEST(test_hint_overtakes_ticket)
{
    hint_overtakes(0, 6);
}
END_TEST

START_TEST(test_hint_overtakes_batch)
{
    /* Five tickets over two 4-slot segments (1..5). */
    hint_overtakes(1, 6);
}
END_TEST

/* ---- bounded: refused tickets ----------------------------------------- */

START_TEST(test_refused_ticket_passed)
{
    /* A full bounded queue refuses an enqueue after its ticket: the ticket
     * counts as refused (not a message, not a place), its slot is marked
     * and the consumer passes it.  The refused record then knows the queue
     * is full and says FULL without a ticket until room is published. */
    mpscq_config c;
    mpscq_config_init(&c);
    c.capacity = 4;
    c.segment_slots = 4;
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    struct mpscq *in = (struct mpscq *)q;
    void *m;
    uint64_t refused = 0;
    for (int round = 0; round < 3; round++) {
        uint64_t t0 = atomic_load(&in->tail);
        for (uintptr_t i = 0; i < 4; i++)
            ck_assert_int_eq(mpscq_enqueue(q, (void *)(i + 1)), MPSCQ_OK);
        unsigned long before = mpscq_rmw_count;
        ck_assert_int_eq(mpscq_enqueue(q, NULL), MPSCQ_FULL);
        /* The first round's refusal comes after a ticket: the record holds
         * a spare and has seen no refusal.  (Later ones may be decided
         * without, when the record must refill its spare first: the check
         * before allocating sees the room gone.) */
        uint64_t t1 = atomic_load(&in->tail);
        if (round == 0) {
            ck_assert_uint_eq(t1, t0 + 5);
            /* The ticket, the refusal count, and the link and hint CAS of
             * the segment the refused slot opens. */
            ck_assert_uint_le(mpscq_rmw_count - before, 4);
        }
        ck_assert_uint_le(t1, t0 + 5);
        refused += t1 - (t0 + 4);
        ck_assert_uint_eq(atomic_load(&in->rejected), refused);
        ck_assert_int_eq(mpscq_enqueue(q, NULL), MPSCQ_FULL);
        ck_assert_uint_eq(atomic_load(&in->tail), t1); /* no ticket this time */
        ck_assert_uint_eq(mpscq_size(q), 4);
        struct mpscq_stats st;
        mpscq_stats(q, &st);
        ck_assert_uint_eq(st.enqueued, 4 * (uint64_t)round + 4);
        for (uintptr_t i = 0; i < 4; i++) {
            ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
            ck_assert_ptr_eq(m, (void *)(i + 1));
        }
        /* A refused ticket is passed, with no message. */
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
        ck_assert_uint_eq(in->scan, t1);
        ck_assert_uint_eq(in->npend, 0);
        ck_assert_uint_eq(mpscq_size(q), 0);
        /* and the drained queue takes exactly `capacity` again. */
    }
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

static _Atomic int refuse_stalled, refuse_go, exact_parked;

static void refuse_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    if (where == MPSCQ_HOOK_AFTER_TICKET && stall_me) {
        stall_me = 0;
        atomic_store(&refuse_stalled, 1);
        while (!atomic_load(&refuse_go))
            sched_yield();
    }
    if (where == MPSCQ_HOOK_PARK && t == 0)
        atomic_store(&exact_parked, 1);
}

/* Releases the refused producer once the consumer is in its exact sleep
 * (the park hook with t == 0 runs just before the futex wait). */
static void *release_when_parked(void *p)
{
    (void)p;
    while (!atomic_load(&exact_parked))
        sched_yield();
    atomic_store(&refuse_go, 1);
    return NULL;
}

static _Atomic int refuse_warm, refuse_full;

static void *refused_producer(void *p)
{
    struct staller *s = p;
    /* Register and take a spare while there is room, so that the refusal
     * comes after a ticket (with no spare, the check before allocating
     * would say FULL without one). */
    void *m;
    ck_assert_int_eq(mpscq_enqueue(s->q, tu_msg(7, 0)), MPSCQ_OK);
    atomic_store(&refuse_warm, 1);
    while (!atomic_load(&refuse_full))
        sched_yield();
    (void)m;
    stall_me = 1;
    atomic_store(&s->rc, mpscq_enqueue(s->q, tu_msg(7, 1)));
    return NULL;
}

START_TEST(test_refused_ticket_wakes_closed_consumer)
{
    /* A producer refused on a full queue stops before it marks its slot;
     * the queue is closed and drained, and the consumer falls into its
     * exact sleep waiting for that last ticket.  Marking the slot must
     * wake it (a refused ticket is the consumer's business too), and the
     * wait returns CLOSED. */
    mpscq_config c;
    mpscq_config_init(&c);
    c.capacity = 2;
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    atomic_store(&refuse_stalled, 0);
    atomic_store(&refuse_go, 0);
    atomic_store(&exact_parked, 0);
    atomic_store(&refuse_warm, 0);
    atomic_store(&refuse_full, 0);
    mpscq_test_hook = refuse_hook;
    struct staller s = { q, -1 };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, refused_producer, &s), 0);
    while (!atomic_load(&refuse_warm))
        sched_yield();
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(7, 0));
    ck_assert_int_eq(mpscq_enqueue(q, tu_msg(0, 0)), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(q, tu_msg(0, 1)), MPSCQ_OK);
    atomic_store(&refuse_full, 1);
    while (!atomic_load(&refuse_stalled))
        sched_yield();
    mpscq_close(q);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(0, 0));
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(0, 1));
    /* The consumer's wait runs in this thread; another releases the
     * producer once that wait is in its exact sleep. */
    pthread_t rel;
    ck_assert_int_eq(pthread_create(&rel, NULL, release_when_parked, NULL), 0);
    /* No timeout: a wake-up lost here would hang, and Check's timeout
     * fail the test (a timed wait would end in CLOSED all the same). */
    ck_assert_int_eq(mpscq_dequeue_wait(q, &m, -1), MPSCQ_CLOSED);
    pthread_join(rel, NULL);
    pthread_join(th, NULL);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(s.rc, MPSCQ_FULL);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* ---- a refused batch marks its first ticket last ----------------------- */

static _Atomic int sw_after_ticket, sw_go1, sw_marked, sw_go2, sw_warm, sw_do;
static _Thread_local int sw_me;
static mpscq_t *sw_q;

static void sw_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    (void)t;
    if (!sw_me)
        return;
    if (where == MPSCQ_HOOK_AFTER_TICKET) {
        atomic_store(&sw_after_ticket, 1);
        while (!atomic_load(&sw_go1))
            sched_yield();
    } else if (where == MPSCQ_HOOK_SKIP_MARKED && !atomic_load(&sw_marked)) {
        atomic_store(&sw_marked, 1);
        while (!atomic_load(&sw_go2))
            sched_yield();
    }
}

static void *sw_thread(void *p)
{
    (void)p;
    void *two[2] = { tu_msg(1, 0), tu_msg(1, 1) };
    /* Tickets 0, 1 in segment 0: keeps both spares. */
    ck_assert_int_eq(mpscq_enqueue_batch(sw_q, two, 2), MPSCQ_OK);
    atomic_store(&sw_warm, 1);
    while (!atomic_load(&sw_do))
        sched_yield();
    sw_me = 1;
    ck_assert_int_eq(mpscq_enqueue_batch(sw_q, two, 2), MPSCQ_FULL);
    return NULL;
}

START_TEST(test_refused_batch_after_walk_back)
{
    /* A refused batch's tickets 3 (segment 1) and 4 (segment 2); its hint,
     * read after another enqueue linked segment 2, is past ticket 3's
     * segment, so it walks back and its hazard names segment 2 only.  It
     * marks one ticket and stops, and the consumer takes what it can.  Had
     * it marked ticket 3 first (as it did: found by an independent
     * review), the consumer would handle 3, pass 4 and recycle segment 1,
     * which the producer then read again (SIGSEGV).  Marking the first
     * ticket last keeps segment 1 until nothing more is read from it. */
    mpscq_config c;
    mpscq_config_init(&c);
    c.segment_slots = 2;
    c.capacity = 3;
    ck_assert_int_eq(mpscq_create(&sw_q, &c), MPSCQ_OK);
    atomic_store(&sw_after_ticket, 0);
    atomic_store(&sw_go1, 0);
    atomic_store(&sw_marked, 0);
    atomic_store(&sw_go2, 0);
    atomic_store(&sw_warm, 0);
    atomic_store(&sw_do, 0);
    mpscq_test_hook = sw_hook;
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, sw_thread, NULL), 0);
    while (!atomic_load(&sw_warm))
        sched_yield();
    ck_assert_int_eq(mpscq_enqueue(sw_q, tu_msg(0, 0)), MPSCQ_OK); /* ticket 2: full */
    atomic_store(&sw_do, 1);
    while (!atomic_load(&sw_after_ticket))
        sched_yield();
    void *m;
    ck_assert_int_eq(mpscq_dequeue(sw_q, &m), MPSCQ_OK);
    ck_assert_int_eq(mpscq_dequeue(sw_q, &m), MPSCQ_OK);
    ck_assert_int_eq(mpscq_dequeue(sw_q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(0, 0));
    ck_assert_int_eq(mpscq_dequeue(sw_q, &m), MPSCQ_EMPTY);
    ck_assert_int_eq(mpscq_enqueue(sw_q, tu_msg(0, 1)), MPSCQ_OK); /* ticket 5: links segment 2 */
    ck_assert_uint_eq(atomic_load(&((struct mpscq *)sw_q)->hint)->id, 2);
    atomic_store(&sw_go1, 1);
    while (!atomic_load(&sw_marked))
        sched_yield();
    ck_assert_int_eq(mpscq_dequeue(sw_q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(0, 1));
    atomic_store(&sw_go2, 1);
    pthread_join(th, NULL);
    mpscq_test_hook = NULL;
    while (mpscq_dequeue(sw_q, &m) == MPSCQ_OK)
        ck_abort_msg("refused tickets carry no message");
    mpscq_destroy(sw_q, NULL, NULL);
}
END_TEST

/* ---- the consumer at an issued, unwritten ticket --------------------- */

extern _Atomic unsigned long mpscq_test_spins;

START_TEST(test_lazy_pass_and_catch_up)
{
    /* A producer stops between its ticket and its slot write.  The
     * consumer waits for it once per call, a bounded spin (design.md
     * s. 8), and, with nothing written behind it, says EMPTY without
     * recording it as passed; a message enqueued after it is then taken,
     * and only then is the stopped ticket passed.  With nothing issued
     * the consumer says EMPTY at once, no spin. */
    mpscq_config c;
    mpscq_config_init(&c);
    c.segment_slots = 4;
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    struct mpscq *in = (struct mpscq *)q;
    void *m;
    unsigned long spins = atomic_load(&mpscq_test_spins);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    ck_assert_uint_eq(atomic_load(&mpscq_test_spins), spins); /* nothing issued */
    atomic_store(&release_stall, 0);
    stall_where = MPSCQ_HOOK_AFTER_HINT;
    mpscq_test_hook = stall_hook;
    struct staller s = { q, -1 };
    pthread_t st;
    start_stalled(stalled_producer, &s, &st);
    for (int i = 1; i <= 3; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
        ck_assert_uint_eq(atomic_load(&mpscq_test_spins), spins + (unsigned long)i);
        ck_assert_uint_eq(in->npend, 0); /* not passed: nothing behind it */
    }
    spins = atomic_load(&mpscq_test_spins);
    ck_assert_int_eq(mpscq_enqueue(q, tu_msg(6, 0)), MPSCQ_OK);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(6, 0));
    ck_assert_uint_eq(in->npend, 1);            /* passed now */
    ck_assert_uint_eq(atomic_load(&mpscq_test_spins), spins + 1);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    ck_assert_uint_eq(atomic_load(&mpscq_test_spins), spins + 1); /* passed: no wait */
    atomic_store(&release_stall, 1);
    pthread_join(st, NULL);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(s.rc, MPSCQ_OK);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(7, 0));
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    ck_assert_uint_eq(in->npend, 0);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* ---- a batch is never entered in the middle ------------------------ */

static void *batch_producer(void *p)
{
    struct staller *b = p;
    void *msgs[5] = { tu_msg(1, 0), tu_msg(1, 1), tu_msg(1, 2), tu_msg(1, 3), tu_msg(1, 4) };
    stall_me = 1;
    atomic_store(&b->rc, mpscq_enqueue_batch(b->q, msgs, 5));
    return NULL;
}

static void *batch5_producer(void *p)
{
    return batch_producer(p);
}

START_TEST(test_batch_interior_not_taken_early)
{
    /* The batch's interior slots are written and visible, its head is not:
     * the consumer must take none of them, yet must take a later
     * producer's message; then the whole batch, contiguous and in order. */
    mpscq_config c;
    mpscq_config_init(&c);
    c.segment_slots = 4; /* the batch spans two segments */
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(q, tu_msg(0, 0)), MPSCQ_OK);
    atomic_store(&release_stall, 0);
    stall_where = MPSCQ_HOOK_BEFORE_PUBLISH;
    mpscq_test_hook = stall_hook;
    struct staller b = { q, -1 };
    pthread_t th;
    start_stalled(batch_producer, &b, &th);
    ck_assert_int_eq(mpscq_enqueue(q, tu_msg(0, 1)), MPSCQ_OK);
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(0, 0));
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(0, 1));
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    atomic_store(&release_stall, 1);
    pthread_join(th, NULL);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(b.rc, MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(q, tu_msg(0, 2)), MPSCQ_OK);
    for (uint64_t i = 0; i < 5; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, tu_msg(1, i));
    }
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(0, 2));
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* ---- real-time order with the consumer mid-dequeue --------------- */

/* Scenario: A takes ticket t and stops before writing.  The consumer
 * passes t (not written).  Between the consumer's re-read of passed slots
 * and its forward scan, A finishes and returns, and only then B enqueues
 * (ticket t+1) and returns.  enqueue(A) returned before enqueue(B)
 * began, so A's message must come out before B's, whatever that dequeue
 * returns (it may linearize before both and say EMPTY). */
static mpscq_t *lin_q;
static _Atomic int lin_a_parked, lin_a_go, lin_scan_hits;
static pthread_t lin_a;

static void *lin_b_thread(void *p)
{
    (void)p;
    ck_assert_int_eq(mpscq_enqueue(lin_q, tu_msg(2, 0)), MPSCQ_OK);
    return NULL;
}

static void lin_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    (void)t;
    if (where == MPSCQ_HOOK_AFTER_TICKET && stall_me) {
        stall_me = 0;
        atomic_store(&lin_a_parked, 1);
        while (!atomic_load(&lin_a_go))
            sched_yield();
    } else if (where == MPSCQ_HOOK_CONSUMER_SCAN && atomic_load(&lin_a_parked) &&
               atomic_fetch_add(&lin_scan_hits, 1) == 1) {
        /* Second slow dequeue: the passed slot was just re-read empty. */
        atomic_store(&lin_a_go, 1);
        pthread_join(lin_a, NULL);       /* enqueue(A) has returned */
        pthread_t b;
        pthread_create(&b, NULL, lin_b_thread, NULL);
        pthread_join(b, NULL);           /* enqueue(B) has returned */
    }
}

static void *lin_a_thread(void *p)
{
    (void)p;
    stall_me = 1;
    ck_assert_int_eq(mpscq_enqueue(lin_q, tu_msg(1, 0)), MPSCQ_OK);
    return NULL;
}

START_TEST(test_realtime_order_mid_dequeue)
{
    ck_assert_int_eq(mpscq_create(&lin_q, NULL), MPSCQ_OK);
    atomic_store(&lin_a_parked, 0);
    atomic_store(&lin_a_go, 0);
    atomic_store(&lin_scan_hits, 0);
    mpscq_test_hook = lin_hook;
    ck_assert_int_eq(pthread_create(&lin_a, NULL, lin_a_thread, NULL), 0);
    while (!atomic_load(&lin_a_parked))
        sched_yield();
    void *m;
    /* First slow dequeue passes A's slot and finds nothing else. */
    ck_assert_int_eq(mpscq_dequeue(lin_q, &m), MPSCQ_EMPTY);
    /* Second: the hook runs A to completion, then B, mid-dequeue. */
    int rc = mpscq_dequeue(lin_q, &m);
    ck_assert_int_eq(atomic_load(&lin_scan_hits), 2);
    if (rc == MPSCQ_EMPTY)
        rc = mpscq_dequeue(lin_q, &m);
    ck_assert_int_eq(rc, MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(1, 0));
    ck_assert_int_eq(mpscq_dequeue(lin_q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(2, 0));
    ck_assert_int_eq(mpscq_dequeue(lin_q, &m), MPSCQ_EMPTY);
    mpscq_test_hook = NULL;
    mpscq_destroy(lin_q, NULL, NULL);
}
END_TEST


/* ---- an overtaken batch drains in linear time ---------------------- */

static _Atomic int stop_a, stop_b, rel_a, rel_b;
static _Thread_local int who; /* 1: stop after the ticket; 2: before the batch head */

static void two_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    (void)t;
    if (who == 1 && where == MPSCQ_HOOK_AFTER_TICKET) {
        who = 0;
        atomic_store(&stop_a, 1);
        while (!atomic_load(&rel_a))
            sched_yield();
    } else if (who == 2 && where == MPSCQ_HOOK_BEFORE_PUBLISH) {
        who = 0;
        atomic_store(&stop_b, 1);
        while (!atomic_load(&rel_b))
            sched_yield();
    }
}

static void *hole_producer(void *p)
{
    struct staller *s = p;
    who = 1;
    atomic_store(&s->rc, mpscq_enqueue(s->q, tu_msg(7, 0)));
    return NULL;
}

static void *held_batch_producer(void *p)
{
    struct staller *b = p;
    size_t n = (size_t)atomic_load(&b->rc);
    void **msgs = malloc(n * sizeof *msgs);
    for (size_t i = 0; i < n; i++)
        msgs[i] = tu_msg(1, i);
    who = 2;
    atomic_store(&b->rc, mpscq_enqueue_batch(b->q, msgs, n));
    free(msgs);
    return NULL;
}

START_TEST(test_overtaken_batch_drains_linearly)
{
    /* The consumer passes every ticket of a batch whose interior is
     * written and whose head is not (as a consumer polling during the
     * write does).  The passed set must hold it as one run, and draining
     * it must cost O(1) per message, not a scan or a move of the rest of
     * the set per message (it used to take 2 s for 160 000 messages). */
    size_t n = tu_scaled(20000, 2000);
    mpscq_config c;
    mpscq_config_init(&c);
    c.segment_slots = 64;
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    atomic_store(&stop_b, 0);
    atomic_store(&rel_b, 0);
    mpscq_test_hook = two_hook;
    struct staller b = { q, (int)n };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, held_batch_producer, &b), 0);
    while (!atomic_load(&stop_b))
        sched_yield();
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    ck_assert_uint_eq(((struct mpscq *)q)->npend, 1); /* one run */
    /* The run is learned as one batch's interior once; polling it again
     * costs O(1) per poll, not a re-read of n state bytes. */
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    mpscq_pend_work = 0;
    for (int k = 0; k < 100; k++)
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    ck_assert_msg(mpscq_pend_work <= 100 * 4, "100 polls cost %lu steps", mpscq_pend_work);
    atomic_store(&rel_b, 1);
    pthread_join(th, NULL);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(b.rc, MPSCQ_OK);
    mpscq_pend_work = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, tu_msg(1, i));
    }
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    ck_assert_msg(mpscq_pend_work <= 4 * n, "draining %zu passed messages cost %lu steps", n,
                  mpscq_pend_work);
    ck_assert_uint_eq(((struct mpscq *)q)->npend, 0);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

START_TEST(test_batch_behind_stalled_producer)
{
    /* A producer stops after its ticket; a batch behind it is passed
     * while its head is unwritten, so one run holds the hole and the
     * batch.  Taking the batch splits the run; the hole alone remains, and
     * later polls cost O(1) each, not a re-read of the whole batch. */
    size_t n = tu_scaled(20000, 2000);
    mpscq_config c;
    mpscq_config_init(&c);
    c.segment_slots = 64;
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    atomic_store(&stop_a, 0);
    atomic_store(&stop_b, 0);
    atomic_store(&rel_a, 0);
    atomic_store(&rel_b, 0);
    mpscq_test_hook = two_hook;
    struct staller a = { q, -1 }, b = { q, (int)n };
    pthread_t ta, tb;
    ck_assert_int_eq(pthread_create(&ta, NULL, hole_producer, &a), 0);
    while (!atomic_load(&stop_a))
        sched_yield();
    ck_assert_int_eq(pthread_create(&tb, NULL, held_batch_producer, &b), 0);
    while (!atomic_load(&stop_b))
        sched_yield();
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    ck_assert_uint_eq(((struct mpscq *)q)->npend, 1);
    atomic_store(&rel_b, 1);
    pthread_join(tb, NULL);
    ck_assert_int_eq(b.rc, MPSCQ_OK);
    mpscq_pend_work = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, tu_msg(1, i));
    }
    ck_assert_msg(mpscq_pend_work <= 4 * n, "draining %zu messages cost %lu steps", n,
                  mpscq_pend_work);
    /* Only the hole is left; polling it is cheap. */
    ck_assert_uint_eq(((struct mpscq *)q)->npend, 1);
    mpscq_pend_work = 0;
    for (int k = 0; k < 100; k++)
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    ck_assert_uint_le(mpscq_pend_work, 100 * 4);
    atomic_store(&rel_a, 1);
    pthread_join(ta, NULL);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(a.rc, MPSCQ_OK);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(7, 0));
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    ck_assert_uint_eq(((struct mpscq *)q)->npend, 0);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* ---- the sleeping consumer's barrier ------------------------------ */

static _Atomic int barriers, light_parks;
static mpscq_t *wake_q;
static uint64_t wake_seq;

static void wake_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    if (where == MPSCQ_HOOK_BARRIER)
        atomic_fetch_add(&barriers, 1);
    if (where == MPSCQ_HOOK_PARK && t == 1) {
        atomic_fetch_add(&light_parks, 1);
        /* A producer's enqueue lands just as the consumer goes to sleep:
         * it sees parked == 1 and wakes it (the futex wait then returns
         * at once).  Deterministic, and the same code path as a producer
         * on another CPU. */
        if (wake_q)
            ck_assert_int_eq(mpscq_enqueue(wake_q, tu_msg(3, wake_seq++)), MPSCQ_OK);
    }
}

START_TEST(test_light_sleep_ended_by_producer_pays_no_barrier)
{
    /* design.md s. 7: the membarrier is paid only when a light sleep ends
     * with nothing to take.  It used to be paid after every light sleep. */
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, NULL), MPSCQ_OK);
    atomic_store(&barriers, 0);
    atomic_store(&light_parks, 0);
    wake_q = q;
    wake_seq = 0;
    mpscq_test_hook = wake_hook;
    void *m;
    for (uint64_t i = 0; i < 50; i++) {
        ck_assert_int_eq(mpscq_dequeue_wait(q, &m, 1000000000LL), MPSCQ_OK);
        ck_assert_ptr_eq(m, tu_msg(3, i));
    }
    ck_assert_int_eq(atomic_load(&light_parks), 50);
    ck_assert_int_eq(atomic_load(&barriers), 0);
    /* A wait whose timeout ends before its sleep pays no barrier either
     * (a consumer polling with a short timeout would otherwise interrupt
     * every CPU on every call): 200 us are spent in naps (the first 1 ms
     * of a wait, MPSCQ_NAP_DEFAULT_NS each). */
    wake_q = NULL;
    for (int k = 0; k < 5; k++)
        ck_assert_int_eq(mpscq_dequeue_wait(q, &m, 200000LL), MPSCQ_TIMEOUT);
    ck_assert_int_eq(atomic_load(&light_parks), 50);
    ck_assert_int_eq(atomic_load(&barriers), 0);
    /* A light sleep that ends with nothing, well before the deadline, is
     * followed by the exact one, barrier first. */
    ck_assert_int_eq(mpscq_dequeue_wait(q, &m, 100000000LL), MPSCQ_TIMEOUT);
    ck_assert_int_eq(atomic_load(&light_parks), 51);
    ck_assert_int_ge(atomic_load(&barriers), 1);
    mpscq_test_hook = NULL;
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* ---- naps: no producer wakes the consumer while messages come ------ */

static _Atomic int nap_seen, nap_msg_sent, napped_timed_out, naps_after_close;
static mpscq_t *nap_q;
static int nap_close; /* 0: a producer's message lands; 1: mpscq_close */

static void *nap_actor(void *p)
{
    (void)p;
    while (!atomic_load(&nap_seen))
        sched_yield();
    if (nap_close)
        mpscq_close(nap_q);
    else
        ck_assert_int_eq(mpscq_enqueue(nap_q, tu_msg(5, 0)), MPSCQ_OK);
    atomic_store(&nap_msg_sent, 1);
    return NULL;
}

static void nap_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    if (where == MPSCQ_HOOK_NAP && !atomic_load(&nap_seen)) {
        /* The consumer is about to nap: the other thread acts now, and the
         * nap starts after it is done, so the deciding loads are the
         * producer's check of parked (which must say "no wake") or the
         * nap's futex compare (which must see the close). */
        atomic_store(&nap_seen, 1);
        while (!atomic_load(&nap_msg_sent))
            sched_yield();
    } else if (where == MPSCQ_HOOK_NAP) {
        atomic_fetch_add(&naps_after_close, 1);
    }
    if (where == MPSCQ_HOOK_NAPPED && atomic_load(&nap_msg_sent) &&
        atomic_load(&napped_timed_out) < 0)
        atomic_store(&napped_timed_out, (int)t);
}

static void nap_case(int close, unsigned long long nap_ns)
{
    mpscq_config c;
    mpscq_config_init(&c);
    c.nap_ns = nap_ns;
    ck_assert_int_eq(mpscq_create(&nap_q, &c), MPSCQ_OK);
    atomic_store(&nap_seen, 0);
    atomic_store(&nap_msg_sent, 0);
    atomic_store(&napped_timed_out, -1);
    atomic_store(&naps_after_close, 0);
    nap_close = close;
    unsigned long wakes = atomic_load(&mpscq_test_producer_wakes);
    mpscq_test_hook = nap_hook;
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, nap_actor, NULL), 0);
    void *m;
    int rc = mpscq_dequeue_wait(nap_q, &m, -1);
    pthread_join(th, NULL);
    mpscq_test_hook = NULL;
    if (close) {
        ck_assert_int_eq(rc, MPSCQ_CLOSED);
        /* The close ended the nap (or kept it from starting): it did not
         * run out its second, and no other nap followed. */
        ck_assert_int_eq(atomic_load(&napped_timed_out), 0);
        ck_assert_int_eq(atomic_load(&naps_after_close), 0);
    } else {
        ck_assert_int_eq(rc, MPSCQ_OK);
        ck_assert_ptr_eq(m, tu_msg(5, 0));
        /* The producer paid no wake-up: the nap ran out by itself. */
        ck_assert_uint_eq(atomic_load(&mpscq_test_producer_wakes), wakes);
        ck_assert_int_eq(atomic_load(&napped_timed_out), 1);
    }
    mpscq_destroy(nap_q, NULL, NULL);
}

START_TEST(test_nap_producer_pays_no_wake)
{
    nap_case(0, 0);          /* the default nap */
    nap_case(0, 200000);     /* a low-CPU setting */
}
END_TEST

START_TEST(test_close_wakes_napping_consumer)
{
    /* A 1 s nap: a close that did not reach it would leave it to run out
     * (the hook then sees it timed out). */
    nap_case(1, MPSCQ_NAP_MAX_NS);
}
END_TEST

extern _Atomic unsigned long mpscq_test_calibrations, mpscq_test_spins;

START_TEST(test_spin_calibrated_at_create_and_bounded_by_timeout)
{
    /* The pause calibration runs in mpscq_create, never in a wait, and a
     * wait's spin stays within its timeout: a first mpscq_dequeue_wait
     * with a 1 ns timeout used to calibrate inside it (8.7 ms). */
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, NULL), MPSCQ_OK);
    ck_assert_uint_eq(atomic_load(&mpscq_test_calibrations), 1); /* once per process */
    unsigned long spins = atomic_load(&mpscq_test_spins);
    void *m;
    ck_assert_int_eq(mpscq_dequeue_wait(q, &m, 1), MPSCQ_TIMEOUT);
    ck_assert_uint_eq(atomic_load(&mpscq_test_spins), spins); /* 1 ns: no spin round */
    ck_assert_int_eq(mpscq_dequeue_wait(q, &m, 100), MPSCQ_TIMEOUT);
    /* 100 ns: rounds of 16, 32 ns fit (48 ns), the next (64) would not. */
    ck_assert_uint_eq(atomic_load(&mpscq_test_spins), spins + 2);
    ck_assert_uint_eq(atomic_load(&mpscq_test_calibrations), 1);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* ---- contention warning ------------------------------------------- */

START_TEST(test_contention_warning)
{
    struct tu_log l;
    mpscq_config c;
    mpscq_config_init(&c);
    c.segment_slots = 2;
    tu_config_log(&c, &l);
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    for (uintptr_t i = 0; i < 8; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
    /* The consumer's next recycle of a segment meets 2500 failed CASes. */
    atomic_store(&mpscq_test_cas_failures, 2500);
    void *m;
    for (uintptr_t i = 0; i < 8; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)i);
    }
    ck_assert_int_le(atomic_load(&mpscq_test_cas_failures), 0);
    atomic_store(&mpscq_test_cas_failures, 0);
    /* Logged exactly once, as a warning, with the documented text. */
    ck_assert_int_eq(atomic_load(&l.count), 1);
    ck_assert_int_eq(l.last_level, MPSCQ_LOG_WARN);
    ck_assert_str_eq(l.last, "Dequeue experiencing high contention (1000 CAS failures)");
    struct mpscq_stats st;
    mpscq_stats(q, &st);
    ck_assert_uint_ge(st.cas_failures, 2500);
    /* And the queue still works. */
    for (uintptr_t i = 0; i < 8; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
    for (uintptr_t i = 0; i < 8; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)i);
    }
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("hooks");
    TCase *tc = tcase_create("hooks");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_rmw_bound_unbounded);
    tcase_add_test(tc, test_rmw_bound_tiny_segments);
    tcase_add_test(tc, test_rmw_bound_bounded);
    tcase_add_test(tc, test_bounded_enqueue_one_locked_instruction);
    tcase_add_test(tc, test_rmw_bound_batches);
    tcase_add_test(tc, test_bounded_dequeue_no_locked_instruction);
    tcase_add_test(tc, test_stalled_after_ticket);
    tcase_add_test(tc, test_stalled_before_ticket);
    tcase_add_test(tc, test_stalled_after_hint);
    tcase_add_test(tc, test_link_beyond_spares);
    tcase_add_test(tc, test_hint_overtakes_ticket);
    tcase_add_test(tc, test_hint_overtakes_batch);
    tcase_add_test(tc, test_lazy_pass_and_catch_up);
    tcase_add_test(tc, test_refused_ticket_passed);
    tcase_add_test(tc, test_refused_ticket_wakes_closed_consumer);
    tcase_add_test(tc, test_refused_batch_after_walk_back);
    tcase_add_test(tc, test_batch_interior_not_taken_early);
    tcase_add_test(tc, test_realtime_order_mid_dequeue);
    tcase_add_test(tc, test_contention_warning);
    tcase_add_test(tc, test_overtaken_batch_drains_linearly);
    tcase_add_test(tc, test_batch_behind_stalled_producer);
    tcase_add_test(tc, test_light_sleep_ended_by_producer_pays_no_barrier);
    tcase_add_test(tc, test_spin_calibrated_at_create_and_bounded_by_timeout);
    tcase_add_test(tc, test_nap_producer_pays_no_wake);
    tcase_add_test(tc, test_close_wakes_napping_consumer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run("hooks", suite());
}
