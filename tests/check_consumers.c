/* check_consumers.c - the many-consumer mode (mpscq_config.consumers =
 * MPSCQ_CONSUMERS_MANY): the contract, exact delivery and per-consumer
 * order under load, a producer and a consumer stopped mid-operation, the
 * contention warning, sleeping consumers (wake one, close wakes all, no
 * lost wake-up, signals), bounded mode, memory back after a drain. */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "testutil.h"
#include "internal.h"
#include "segment.h"
#include "consumers.h"
#include "arch.h"
#include "dispatch.h"

static mpscq_t *new_many(size_t capacity, size_t slots)
{
    mpscq_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.consumers = MPSCQ_CONSUMERS_MANY;
    cfg.capacity = capacity;
    cfg.segment_slots = slots;
    mpscq_t *q = NULL;
    ck_assert_int_eq(mpscq_create(&q, &cfg), MPSCQ_OK);
    return q;
}

static void pause_ms(unsigned ms)
{
    struct timespec ts = { 0, (long)ms * 1000000L };
    nanosleep(&ts, NULL);
}

START_TEST(test_contract)
{
    mpscq_config cfg;
    memset(&cfg, 0, sizeof cfg);
    mpscq_t *q = NULL;
    cfg.consumers = 2;
    ck_assert_int_eq(mpscq_create(&q, &cfg), MPSCQ_INVAL);
    cfg.consumers = 1;
    ck_assert_int_eq(mpscq_create(&q, &cfg), MPSCQ_OK);
    mpscq_destroy(q, NULL, NULL);

    q = new_many(0, 4);
    void *m = NULL;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    ck_assert_int_eq(mpscq_dequeue_wait(q, &m, 0), MPSCQ_TIMEOUT);
    ck_assert_int_eq(mpscq_dequeue_wait(q, &m, 1000000), MPSCQ_TIMEOUT);
    for (uintptr_t i = 1; i <= 10; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
    /* Peek is refused: a peeked message would belong to one consumer. */
    ck_assert_int_eq(mpscq_peek(q, &m), MPSCQ_INVAL);
    mpscq_set_t *s = NULL;
    ck_assert_int_eq(mpscq_set_create(&s), MPSCQ_OK);
    ck_assert_int_eq(mpscq_set_add(s, q, 0), MPSCQ_INVAL);
    mpscq_set_destroy(s);
    /* One thread alone sees FIFO, across segments of 4 slots. */
    for (uintptr_t i = 1; i <= 4; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)i);
    }
    void *b[8];
    ck_assert_uint_eq(mpscq_dequeue_batch(q, b, 3), 3);
    for (uintptr_t i = 0; i < 3; i++)
        ck_assert_ptr_eq(b[i], (void *)(5 + i));
    size_t n = 0;
    ck_assert_int_eq(mpscq_dequeue_batch_wait(q, b, 8, &n, 0), MPSCQ_OK);
    ck_assert_uint_eq(n, 3);
    for (uintptr_t i = 0; i < 3; i++)
        ck_assert_ptr_eq(b[i], (void *)(8 + i));
    /* A batch enqueue comes out in order too. */
    void *in[6] = { (void *)11, (void *)12, (void *)13, (void *)14, (void *)15, (void *)16 };
    ck_assert_int_eq(mpscq_enqueue_batch(q, in, 6), MPSCQ_OK);
    for (uintptr_t i = 11; i <= 16; i++) {
        ck_assert_int_eq(mpscq_dequeue_wait(q, &m, -1), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)i);
    }
    ck_assert_int_eq(mpscq_enqueue(q, (void *)17), MPSCQ_OK);
    mpscq_close(q);
    ck_assert_int_eq(mpscq_enqueue(q, (void *)18), MPSCQ_CLOSED);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)17);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_CLOSED);
    ck_assert_int_eq(mpscq_dequeue_wait(q, &m, -1), MPSCQ_CLOSED);
    struct mpscq_stats st;
    mpscq_stats(q, &st);
    ck_assert_uint_eq(st.dequeued, 17);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* Destroy hands what is left to drop, in order. */
static uintptr_t dropped[8];
static unsigned ndropped;
static void drop_rec(void *m, void *arg)
{
    (void)arg;
    dropped[ndropped++] = (uintptr_t)m;
}

START_TEST(test_destroy_drops)
{
    mpscq_t *q = new_many(0, 2);
    for (uintptr_t i = 1; i <= 5; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)1);
    ndropped = 0;
    mpscq_destroy(q, drop_rec, NULL);
    ck_assert_uint_eq(ndropped, 4);
    for (unsigned i = 0; i < 4; i++)
        ck_assert_uint_eq(dropped[i], i + 2);
}
END_TEST

/* ---- many producers, many consumers ---- */

struct load {
    mpscq_t *q;
    unsigned producers;
    uint64_t per;
    _Atomic unsigned char *seen;   /* [producer * per + seq] */
    _Atomic uint64_t received;
    _Atomic int producers_done;
    /* A worker's unexpected return code (first one), asserted by the
     * test thread after the joins: under CK_FORK=no a failed assertion
     * in a worker would longjmp across threads. */
    _Atomic int bad_rc;
    struct tu_barrier start;
};

static void note_bad(struct load *l, int rc)
{
    int none = 0;
    atomic_compare_exchange_strong(&l->bad_rc, &none, rc);
}

struct prod {
    struct load *l;
    unsigned id;
};

static void *load_producer(void *p)
{
    struct prod *pr = p;
    struct load *l = pr->l;
    tu_barrier_wait(&l->start);
    uint64_t i = 0;
    while (i < l->per && !atomic_load(&l->bad_rc)) {
        if (pr->id % 3 == 2 && l->per - i >= 3) {
            /* Batches too: their interiors are taken only after their
             * predecessor. */
            void *b[3] = { tu_msg(pr->id, i), tu_msg(pr->id, i + 1), tu_msg(pr->id, i + 2) };
            int rc = mpscq_enqueue_batch(l->q, b, 3);
            if (rc == MPSCQ_OK)
                i += 3;
            else if (rc == MPSCQ_FULL)
                sched_yield();
            else {
                note_bad(l, rc);
                break;
            }
            continue;
        }
        int rc = mpscq_enqueue(l->q, tu_msg(pr->id, i));
        if (rc == MPSCQ_OK)
            i++;
        else if (rc == MPSCQ_FULL)
            sched_yield();
        else {
            note_bad(l, rc);
            break;
        }
    }
    atomic_fetch_add(&l->producers_done, 1);
    return NULL;
}

struct cons {
    struct load *l;
    unsigned id;
    uint64_t got;
    int64_t last[64];   /* last sequence seen per producer */
    int bad_order;
    int dup;
};

static void cons_note(struct cons *c, void *m)
{
    struct load *l = c->l;
    unsigned p = tu_producer(m);
    uint64_t seq = tu_seq(m);
    if (p >= l->producers || seq >= l->per) {
        c->dup = 1;
        return;
    }
    if ((int64_t)seq <= c->last[p])
        c->bad_order = 1;
    c->last[p] = (int64_t)seq;
    if (atomic_exchange(&l->seen[p * l->per + seq], 1))
        c->dup = 1;
    c->got++;
    atomic_fetch_add(&l->received, 1);
}

static void *load_consumer(void *p)
{
    struct cons *c = p;
    struct load *l = c->l;
    for (unsigned i = 0; i < 64; i++)
        c->last[i] = -1;
    tu_barrier_wait(&l->start);
    uint64_t total = l->per * l->producers;
    unsigned round = 0;
    while (atomic_load(&l->received) < total && !atomic_load(&l->bad_rc)) {
        void *b[5];
        round++;
        if (c->id % 2 == 0 && round % 4 == 0) {
            size_t n = mpscq_dequeue_batch(l->q, b, 5);
            for (size_t i = 0; i < n; i++)
                cons_note(c, b[i]);
            if (!n)
                sched_yield();
        } else if (c->id % 2 == 1 && round % 3 == 0) {
            void *m;
            int rc = mpscq_dequeue_wait(l->q, &m, 200000);
            if (rc == MPSCQ_OK)
                cons_note(c, m);
            else if (rc != MPSCQ_TIMEOUT)
                note_bad(l, rc);
        } else {
            void *m;
            int rc = mpscq_dequeue(l->q, &m);
            if (rc == MPSCQ_OK)
                cons_note(c, m);
            else if (rc == MPSCQ_EMPTY)
                sched_yield();
            else
                note_bad(l, rc);
        }
    }
    return NULL;
}

static void run_load(size_t capacity, size_t slots, unsigned producers, unsigned consumers,
                     uint64_t per)
{
    struct load l;
    memset(&l, 0, sizeof l);
    l.q = new_many(capacity, slots);
    l.producers = producers;
    l.per = per;
    l.seen = calloc(producers * per, 1);
    ck_assert_ptr_nonnull(l.seen);
    tu_barrier_init(&l.start, (int)(producers + consumers));
    pthread_t pt[64], ct[16];
    struct prod pr[64];
    struct cons *cs = calloc(consumers, sizeof *cs);
    for (unsigned i = 0; i < producers; i++) {
        pr[i].l = &l;
        pr[i].id = i;
        ck_assert_int_eq(pthread_create(&pt[i], NULL, load_producer, &pr[i]), 0);
    }
    for (unsigned i = 0; i < consumers; i++) {
        cs[i].l = &l;
        cs[i].id = i;
        ck_assert_int_eq(pthread_create(&ct[i], NULL, load_consumer, &cs[i]), 0);
    }
    /* Statistics read while consumers run (each thread's count in its
     * record): never backwards, never past what was sent. */
    /* Noted here, asserted after the joins: under CK_FORK=no a failed
     * assertion leaves the test by longjmp, and threads still running
     * would use this frame after it is gone. */
    unsigned long long prev = 0, back = 0, over = 0;
    while (atomic_load(&l.producers_done) < (int)producers) {
        struct mpscq_stats st;
        mpscq_stats(l.q, &st);
        if (st.dequeued < prev && !back)
            back = prev;
        if (st.dequeued > per * producers)
            over = st.dequeued;
        prev = st.dequeued;
        sched_yield();
    }
    for (unsigned i = 0; i < producers; i++)
        pthread_join(pt[i], NULL);
    for (unsigned i = 0; i < consumers; i++)
        pthread_join(ct[i], NULL);
    ck_assert_msg(!atomic_load(&l.bad_rc), "a worker got return code %d",
                  atomic_load(&l.bad_rc));
    ck_assert_msg(!back, "mpscq_stats: dequeued went back from %llu", back);
    ck_assert_msg(!over, "mpscq_stats: dequeued %llu, more than sent", over);
    uint64_t sum = 0;
    for (unsigned i = 0; i < consumers; i++) {
        ck_assert_msg(!cs[i].dup, "consumer %u got a duplicate or a foreign message", i);
        ck_assert_msg(!cs[i].bad_order, "consumer %u saw a producer out of order", i);
        sum += cs[i].got;
    }
    ck_assert_uint_eq(sum, per * producers);
    for (uint64_t i = 0; i < per * producers; i++)
        ck_assert_msg(atomic_load(&l.seen[i]), "message %llu never delivered",
                      (unsigned long long)i);
    void *m;
    ck_assert_int_eq(mpscq_dequeue(l.q, &m), MPSCQ_EMPTY);
    struct mpscq_stats st;
    mpscq_stats(l.q, &st);
    ck_assert_uint_eq(st.dequeued, per * producers);
    mpscq_destroy(l.q, NULL, NULL);
    free((void *)l.seen);
    free(cs);
}

START_TEST(test_exact_16p4c)
{
    run_load(0, 4, 16, 4, tu_scaled(6000, 300));
}
END_TEST

START_TEST(test_exact_16p4c_bounded)
{
    run_load(64, 4, 16, 4, tu_scaled(4000, 300));
}
END_TEST

/* Preemption at the worst places, many times over: every producer and
 * consumer hook yields the CPU now and then (a pseudo-random eighth of
 * the time), so producers stop between ticket and write, batches between
 * interior and head, consumers between claim and return, while others
 * run.  (This found a scan that refreshed its limit midway without
 * reading its passed tickets again: a producer's message taken after
 * its next one.) */
static void yield_hook(int where, const struct mpscq *q, uint64_t t)
{
    static _Thread_local unsigned seed;
    (void)where;
    (void)q;
    (void)t;
    if (!seed)
        seed = (unsigned)(uintptr_t)&seed | 1;
    seed = seed * 1103515245u + 12345u;
    if (((seed >> 16) & 7) == 0)
        sched_yield();
}

START_TEST(test_exact_preempted)
{
    /* Valgrind runs one thread at a time and switches on its own: the
     * yields make no preemption there, and Helgrind reports state-byte
     * accesses of segments reused in quick succession here that TSan,
     * which runs it, does not (doc/design.md s. 16).  Not under it. */
    if (tu_under_valgrind())
        return;
    mpscq_test_hook = yield_hook;
    run_load(0, 2, 16, 4, tu_scaled(1000, 150));
    run_load(64, 4, 16, 4, tu_scaled(1000, 150));
    mpscq_test_hook = NULL;
}
END_TEST

START_TEST(test_exact_2p8c_tiny)
{
    run_load(0, 2, 2, 8, tu_scaled(20000, 500));
}
END_TEST

/* ---- stopping a thread at a hook ---- */

static _Atomic int stop_where = -1;
static _Atomic uint64_t stop_ticket;
static _Atomic int stopped, resume;
static pthread_t stop_thread;
static _Atomic int stop_thread_set;
static void (*in_stop)(void); /* run by the stopped thread, while stopped */

static void stop_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    if (where != atomic_load(&stop_where) || t != atomic_load(&stop_ticket))
        return;
    if (atomic_load(&stop_thread_set) && !pthread_equal(pthread_self(), stop_thread))
        return;
    atomic_store(&stop_where, -1); /* once */
    if (in_stop)
        in_stop();
    atomic_store(&stopped, 1);
    while (!atomic_load(&resume))
        sched_yield();
}

static void stop_arm(int where, uint64_t t)
{
    /* Shared with the stopped thread (atomics, or written while it cannot
     * read them): not for Helgrind. */
    MPSCQ_HG_ATOMIC(&in_stop, sizeof in_stop);
    MPSCQ_HG_ATOMIC(&stop_thread, sizeof stop_thread);
    atomic_store(&stopped, 0);
    atomic_store(&resume, 0);
    atomic_store(&stop_thread_set, 0);
    in_stop = NULL;
    atomic_store(&stop_ticket, t);
    atomic_store(&stop_where, where);
    mpscq_test_hook = stop_hook;
}

/* Arm the stop again while a thread stopped earlier still waits in the
 * hook (it goes on at the next stop_release): the hook stays installed,
 * only the atomics change. */
static void stop_rearm(int where, uint64_t t)
{
    atomic_store(&stopped, 0);
    atomic_store(&stop_ticket, t);
    atomic_store(&stop_where, where);
}

static void stop_wait(void)
{
    while (!atomic_load(&stopped))
        sched_yield();
}

static void stop_release(void)
{
    atomic_store(&resume, 1);
}

struct one {
    mpscq_t *q;
    void *msg;
    _Atomic long tid;   /* the thread's, once it runs */
    _Atomic int rc;     /* stored after msg (seq_cst): read it first */
    long long timeout;
};

/* Start fn(o) in a thread.  o's fields are read by this thread while
 * the other runs (atomics, which Helgrind does not model): exempt. */
static int start_one(pthread_t *th, void *(*fn)(void *), struct one *o)
{
    MPSCQ_HG_ATOMIC(o, sizeof *o);
    return pthread_create(th, NULL, fn, o);
}

static void *enqueue_one(void *p)
{
    struct one *o = p;
    o->rc = mpscq_enqueue(o->q, o->msg);
    return NULL;
}

/* Start fn(o) in a thread and wait until it stops at hook where with
 * ticket t (stop_arm). */
static void start_stopped(int where, uint64_t t, pthread_t *th, void *(*fn)(void *), struct one *o)
{
    stop_arm(where, t);
    ck_assert_int_eq(start_one(th, fn, o), 0);
    stop_wait();
}

/* Let the stopped thread go on, join it, remove the hook; its call
 * returned MPSCQ_OK. */
static void finish_stopped(pthread_t th, struct one *o)
{
    stop_release();
    pthread_join(th, NULL);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(o->rc, MPSCQ_OK);
}

static void *dequeue_one(void *p)
{
    struct one *o = p;
    o->rc = mpscq_dequeue(o->q, &o->msg);
    return NULL;
}

static void *wait_one(void *p)
{
    struct one *o = p;
    atomic_store(&o->tid, (long)syscall(SYS_gettid));
    o->rc = mpscq_dequeue_wait(o->q, &o->msg, o->timeout);
    return NULL;
}

/* A producer stopped between its ticket and its write: every consumer
 * delivers everything else, and its message once it writes it. */
START_TEST(test_stalled_producer)
{
    mpscq_t *q = new_many(0, 4);
    struct one a = { .q = q, .msg = tu_msg(1, 0), .rc = -1, .timeout = 0 };
    pthread_t th;
    start_stopped(MPSCQ_HOOK_AFTER_TICKET, 0, &th, enqueue_one, &a);
    for (uint64_t i = 0; i < 100; i++)
        ck_assert_int_eq(mpscq_enqueue(q, tu_msg(2, i)), MPSCQ_OK);
    /* Two consumer threads (this one and another) take all 100 while the
     * first ticket stays unwritten. */
    uint64_t next = 0;
    for (int i = 0; i < 100; i++) {
        void *m;
        if (i % 2) {
            struct one d = { .q = q, .msg = NULL, .rc = -1, .timeout = 0 };
            pthread_t dt;
            ck_assert_int_eq(start_one(&dt, dequeue_one, &d), 0);
            pthread_join(dt, NULL);
            ck_assert_int_eq(d.rc, MPSCQ_OK);
            m = d.msg;
        } else
            ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, tu_msg(2, next));
        next++;
    }
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    finish_stopped(th, &a);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(1, 0));
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* A consumer stopped after its claim, before it returns: the others take
 * everything else (nothing waits for it, and nothing after its message is
 * held back), and it returns its own message when it resumes. */
START_TEST(test_stalled_consumer)
{
    mpscq_t *q = new_many(0, 4);
    for (uint64_t i = 0; i < 50; i++)
        ck_assert_int_eq(mpscq_enqueue(q, tu_msg(0, i)), MPSCQ_OK);
    stop_arm(MPSCQ_HOOK_MANY_CLAIMED, 0);
    struct one c = { .q = q, .msg = NULL, .rc = -1, .timeout = 0 };
    pthread_t th;
    ck_assert_int_eq(start_one(&th, dequeue_one, &c), 0);
    stop_wait();
    for (uint64_t i = 1; i < 50; i++) {
        void *m;
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, tu_msg(0, i));
    }
    /* More come and go past it, across segments. */
    for (uint64_t i = 50; i < 90; i++) {
        void *m;
        ck_assert_int_eq(mpscq_enqueue(q, tu_msg(0, i)), MPSCQ_OK);
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, tu_msg(0, i));
    }
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    finish_stopped(th, &c);
    ck_assert_ptr_eq(c.msg, tu_msg(0, 0));
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* Per-producer order when a consumer passed a producer's first slot: P
 * stops after its first ticket; a consumer's scan reads that slot as not
 * written and stops there (hook); P writes it and enqueues its second
 * message meanwhile.  The consumer must not return the second first. */
static _Atomic int order_p_done;
static void order_in_stop(void)
{
    /* In the consumer, which just passed ticket 0: let P finish message
     * 0 and send message 1. */
    stop_release();
    /* Until P's second enqueue has returned. */
    while (!atomic_load(&order_p_done))
        sched_yield();
}

static void *order_producer(void *p)
{
    mpscq_t *q = p;
    ck_assert_int_eq(mpscq_enqueue(q, tu_msg(3, 0)), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(q, tu_msg(3, 1)), MPSCQ_OK);
    atomic_store(&order_p_done, 1);
    return NULL;
}

static void order_after_pass(int stale)
{
    mpscq_t *q = new_many(0, 4);
    atomic_store(&order_p_done, 0);
    /* P stops after taking ticket 0. */
    stop_arm(MPSCQ_HOOK_AFTER_TICKET, 0);
    pthread_t pt;
    ck_assert_int_eq(pthread_create(&pt, NULL, order_producer, q), 0);
    stop_wait();
    void *m = NULL;
    if (stale)
        /* A first dequeue passes ticket 0 (its cursor keeps it as a
         * hole) and keeps its limit, 1: the next one reads the hole
         * again, reaches that old limit and loads a new one midway. */
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    /* The consumer (this thread) stops where it passes ticket 0; there it
     * lets P go and waits for P's second message. */
    atomic_store(&stopped, 0);
    atomic_store(&resume, 0);
    atomic_store(&stop_ticket, 0);
    stop_thread = pthread_self();
    atomic_store(&stop_thread_set, 1);
    in_stop = order_in_stop;
    atomic_store(&stop_where, MPSCQ_HOOK_MANY_SCANNED);
    int rc = mpscq_dequeue(q, &m);
    while (!atomic_load(&order_p_done))
        sched_yield();
    pthread_join(pt, NULL);
    mpscq_test_hook = NULL;
    void *got[2];
    unsigned n = 0;
    if (rc == MPSCQ_OK)
        got[n++] = m;
    else
        ck_assert_int_eq(rc, MPSCQ_EMPTY);
    while (n < 2) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        got[n++] = m;
    }
    ck_assert_ptr_eq(got[0], tu_msg(3, 0));
    ck_assert_ptr_eq(got[1], tu_msg(3, 1));
    mpscq_destroy(q, NULL, NULL);
}

START_TEST(test_order_after_pass)
{
    order_after_pass(0);
}
END_TEST

START_TEST(test_order_after_pass_stale_limit)
{
    order_after_pass(1);
}
END_TEST

/* 1000 failed claims in a row: one warning with the exact text, and the
 * dequeue still succeeds; no second warning. */
START_TEST(test_contention_warning)
{
    struct tu_log log;
    mpscq_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.consumers = MPSCQ_CONSUMERS_MANY;
    tu_config_log(&cfg, &log);
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &cfg), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(q, (void *)1), MPSCQ_OK);
    atomic_store(&mpscq_test_cas_failures, 999);
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)1);
    ck_assert_int_eq(atomic_load(&log.count), 0); /* 999: not yet */
    ck_assert_int_eq(mpscq_enqueue(q, (void *)2), MPSCQ_OK);
    atomic_store(&mpscq_test_cas_failures, 1000);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)2);
    ck_assert_int_eq(atomic_load(&log.count), 1);
    ck_assert_int_eq(log.last_level, MPSCQ_LOG_WARN);
    ck_assert_str_eq(log.last, "Dequeue experiencing high contention (1000 CAS failures)");
    ck_assert_int_eq(mpscq_enqueue(q, (void *)3), MPSCQ_OK);
    atomic_store(&mpscq_test_cas_failures, 1500);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)3);
    ck_assert_int_eq(atomic_load(&log.count), 1);
    struct mpscq_stats st;
    mpscq_stats(q, &st);
    ck_assert_uint_ge(st.cas_failures, 3499);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* ---- sleeping consumers ---- */

static _Atomic int park_count, sleep_timeouts;
static void count_parks(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    if (where == MPSCQ_HOOK_PARK)
        atomic_fetch_add(&park_count, 1);
    if (where == MPSCQ_HOOK_MANY_WOKEN && t)
        atomic_fetch_add(&sleep_timeouts, 1); /* a sleep nobody ended */
}

static void wait_parks(int n)
{
    while (atomic_load(&park_count) < n)
        sched_yield();
}

/* Until thread tid sleeps in the kernel's futex wait (its wchan says so),
 * not merely between the park hook and the system call.  Where wchan is
 * not shown, 200 ms. */
static void wait_in_futex(long tid)
{
    char path[64], buf[128];
    snprintf(path, sizeof path, "/proc/self/task/%ld/wchan", tid);
    for (;;) {
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = 0;
        if (strstr(buf, "futex"))
            return;
        if (n == 0 || strcmp(buf, "0") == 0) {
            pause_ms(200);
            return;
        }
        sched_yield();
    }
}

/* Four consumers asleep; one message wakes one of them only (the others
 * do not even wake to look: no new sleep); close wakes the rest. */
START_TEST(test_wake_one_close_all)
{
    mpscq_t *q = new_many(0, 4);
    atomic_store(&park_count, 0);
    mpscq_test_hook = count_parks;
    struct one w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct one){ .q = q, .rc = -1, .timeout = -1 };
        ck_assert_int_eq(start_one(&th[i], wait_one, &w[i]), 0);
    }
    wait_parks(4);
    /* A park is counted just before the futex wait: wait until all four
     * are in it (a late one would see parked changed and look again). */
    for (int i = 0; i < 4; i++) {
        while (!atomic_load(&w[i].tid))
            sched_yield();
        wait_in_futex(atomic_load(&w[i].tid));
    }
    ck_assert_int_eq(mpscq_enqueue(q, (void *)7), MPSCQ_OK);
    /* Exactly one returns with it. */
    int done = -1;
    while (done < 0) {
        for (int i = 0; i < 4; i++)
            if (atomic_load(&w[i].rc) != -1)
                done = i;
        sched_yield();
    }
    pause_ms(100);
    ck_assert_int_eq(atomic_load(&park_count), 4); /* nobody else woke */
    int returned = 0;
    for (int i = 0; i < 4; i++)
        returned += atomic_load(&w[i].rc) != -1;
    ck_assert_int_eq(returned, 1);
    mpscq_close(q);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    mpscq_test_hook = NULL;
    for (int i = 0; i < 4; i++) {
        if (i == done) {
            ck_assert_int_eq(w[i].rc, MPSCQ_OK);
            ck_assert_ptr_eq(w[i].msg, (void *)7);
        } else
            ck_assert_int_eq(w[i].rc, MPSCQ_CLOSED);
    }
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* Two messages in a row to two sleepers: the second producer may find
 * parked already cleared by the first; the consumer woken first passes
 * the baton, so both messages are taken by the two sleepers. */
START_TEST(test_baton)
{
    for (int round = 0; round < 20; round++) {
        mpscq_t *q = new_many(0, 4);
        atomic_store(&park_count, 0);
        mpscq_test_hook = count_parks;
        struct one w[2];
        pthread_t th[2];
        for (int i = 0; i < 2; i++) {
            w[i] = (struct one){ .q = q, .rc = -1, .timeout = -1 };
            ck_assert_int_eq(start_one(&th[i], wait_one, &w[i]), 0);
        }
        wait_parks(2);
        ck_assert_int_eq(mpscq_enqueue(q, (void *)1), MPSCQ_OK);
        ck_assert_int_eq(mpscq_enqueue(q, (void *)2), MPSCQ_OK);
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        mpscq_test_hook = NULL;
        ck_assert_int_eq(w[0].rc, MPSCQ_OK);
        ck_assert_int_eq(w[1].rc, MPSCQ_OK);
        ck_assert((w[0].msg == (void *)1 && w[1].msg == (void *)2) ||
                  (w[0].msg == (void *)2 && w[1].msg == (void *)1));
        mpscq_destroy(q, NULL, NULL);
    }
}
END_TEST

/* The message comes at the worst moment: after the sleeper's last look,
 * just before its futex wait.  The producer must see it asleep and wake
 * it (a lost wake-up would leave it waiting out its 5 s). */
static mpscq_t *late_q;
static _Atomic int late_fired;
static void *late_producer(void *p)
{
    (void)p;
    ck_assert_int_eq(mpscq_enqueue(late_q, (void *)9), MPSCQ_OK);
    return NULL;
}
static void late_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    (void)t;
    if (where != MPSCQ_HOOK_PARK || atomic_exchange(&late_fired, 1))
        return;
    /* From another thread, as a real producer: it writes, then reads
     * parked. */
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, late_producer, NULL), 0);
    pthread_join(th, NULL);
}

START_TEST(test_no_lost_wakeup)
{
    late_q = new_many(0, 4);
    atomic_store(&late_fired, 0);
    mpscq_test_hook = late_hook;
    void *m = NULL;
    ck_assert_int_eq(mpscq_dequeue_wait(late_q, &m, 5000000000LL), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)9);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(atomic_load(&late_fired), 1);
    mpscq_destroy(late_q, NULL, NULL);
}
END_TEST

/* A signal during the sleep: the wait goes on (no error, no early
 * return), and the message that comes later is delivered. */
static _Atomic int signals;
static void on_usr1(int sig)
{
    (void)sig;
    atomic_fetch_add(&signals, 1);
}

START_TEST(test_signal_keeps_waiting)
{
    mpscq_t *q = new_many(0, 4);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    atomic_store(&signals, 0);
    atomic_store(&park_count, 0);
    mpscq_test_hook = count_parks;
    struct one w = { .q = q, .msg = NULL, .rc = -1, .timeout = -1 };
    pthread_t th;
    ck_assert_int_eq(start_one(&th, wait_one, &w), 0);
    wait_parks(1);
    pause_ms(20);
    pthread_kill(th, SIGUSR1);
    while (atomic_load(&signals) == 0)
        sched_yield();
    pause_ms(20);
    ck_assert_int_eq(atomic_load(&w.rc), -1);
    ck_assert_int_eq(mpscq_enqueue(q, (void *)5), MPSCQ_OK);
    pthread_join(th, NULL);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(w.rc, MPSCQ_OK);
    ck_assert_ptr_eq(w.msg, (void *)5);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST


/* A woken consumer whose message another consumer took, while more
 * messages came with parked cleared (their producers woke nobody): it
 * takes one in its next look and must pass the baton, so the other
 * sleeper gets the last one. */
static mpscq_t *wl_q;
static _Atomic int wl_stage;
static void *wl_steal(void *p)
{
    void *m = NULL;
    *(int *)p = mpscq_dequeue(wl_q, &m) == MPSCQ_OK && m == (void *)1;
    return NULL;
}
static void *wl_send(void *p)
{
    (void)p;
    ck_assert_int_eq(mpscq_enqueue(wl_q, (void *)2), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(wl_q, (void *)3), MPSCQ_OK);
    return NULL;
}
static _Atomic int wl_stole;
static void wl_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    count_parks(where, q, t);
    int zero = 0, one = 1;
    pthread_t th;
    if (where == MPSCQ_HOOK_MANY_WOKEN && atomic_compare_exchange_strong(&wl_stage, &zero, 1)) {
        /* Another consumer takes the message this one was woken for. */
        int ok = 0;
        ck_assert_int_eq(pthread_create(&th, NULL, wl_steal, &ok), 0);
        pthread_join(th, NULL);
        atomic_store(&wl_stole, ok);
    } else if (where == MPSCQ_HOOK_MANY_ARM && t >= 1 &&
               atomic_compare_exchange_strong(&wl_stage, &one, 2)) {
        /* Two more, before it sets parked again: nobody is woken. */
        ck_assert_int_eq(pthread_create(&th, NULL, wl_send, NULL), 0);
        pthread_join(th, NULL);
    }
}

START_TEST(test_woken_loses_its_message)
{
    wl_q = new_many(0, 4);
    mpscq_t *q = wl_q;
    atomic_store(&wl_stage, 0);
    atomic_store(&wl_stole, 0);
    atomic_store(&park_count, 0);
    atomic_store(&sleep_timeouts, 0);
    mpscq_test_hook = wl_hook;
    struct one w[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        w[i] = (struct one){ .q = q, .rc = -1, .timeout = 5000000000LL };
        ck_assert_int_eq(start_one(&th[i], wait_one, &w[i]), 0);
    }
    wait_parks(2);
    for (int i = 0; i < 2; i++) {
        while (!atomic_load(&w[i].tid))
            sched_yield();
        wait_in_futex(atomic_load(&w[i].tid));
    }
    ck_assert_int_eq(mpscq_enqueue(q, (void *)1), MPSCQ_OK);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(atomic_load(&wl_stage), 2);
    ck_assert_int_eq(atomic_load(&wl_stole), 1);
    /* Both got one of the two, and nobody slept until its timeout (a
     * lost baton leaves one asleep for its 5 s, then it finds m3). */
    ck_assert_int_eq(atomic_load(&sleep_timeouts), 0);
    ck_assert_int_eq(w[0].rc, MPSCQ_OK);
    ck_assert_int_eq(w[1].rc, MPSCQ_OK);
    ck_assert((w[0].msg == (void *)2 && w[1].msg == (void *)3) ||
              (w[0].msg == (void *)3 && w[1].msg == (void *)2));
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* Close with tickets still unwritten and three consumers asleep: each
 * late write wakes one of them only, yet every one of them must return
 * (the messages to two, CLOSED to all once drained). */
static _Atomic int hold_release[2];
static void hold_hook(int where, const struct mpscq *q, uint64_t t)
{
    count_parks(where, q, t);
    if (where == MPSCQ_HOOK_AFTER_TICKET && t < 2)
        while (!atomic_load(&hold_release[t]))
            sched_yield();
}

struct waiter_loop {
    mpscq_t *q;
    _Atomic long tid;
    int got, timeouts, bad;
    void *msgs[2];
};

static void *waiter_loop(void *p)
{
    struct waiter_loop *w = p;
    atomic_store(&w->tid, (long)syscall(SYS_gettid));
    for (;;) {
        void *m;
        int rc = mpscq_dequeue_wait(w->q, &m, 5000000000LL);
        if (rc == MPSCQ_CLOSED)
            return NULL;
        if (rc == MPSCQ_TIMEOUT) {
            w->timeouts++;
            return NULL;
        }
        if (rc != MPSCQ_OK || w->got == 2) {
            w->bad = 1;
            return NULL;
        }
        w->msgs[w->got++] = m;
    }
}

START_TEST(test_close_with_holes_wakes_all)
{
    for (int round = 0; round < 5; round++) {
        mpscq_t *q = new_many(0, 4);
        atomic_store(&hold_release[0], 0);
        atomic_store(&hold_release[1], 0);
        atomic_store(&park_count, 0);
        atomic_store(&sleep_timeouts, 0);
        mpscq_test_hook = hold_hook;
        struct one px = { .q = q, .msg = (void *)10, .rc = -1 };
        struct one py = { .q = q, .msg = (void *)11, .rc = -1 };
        pthread_t pxt, pyt, wt[3];
        ck_assert_int_eq(start_one(&pxt, enqueue_one, &px), 0);
        while (atomic_load(&q->tail) < 1)
            sched_yield();
        ck_assert_int_eq(start_one(&pyt, enqueue_one, &py), 0);
        while (atomic_load(&q->tail) < 2)
            sched_yield();
        struct waiter_loop w[3];
        memset(w, 0, sizeof w);
        for (int i = 0; i < 3; i++) {
            w[i].q = q;
            MPSCQ_HG_ATOMIC(&w[i], sizeof w[i]);
            ck_assert_int_eq(pthread_create(&wt[i], NULL, waiter_loop, &w[i]), 0);
        }
        wait_parks(3);
        for (int i = 0; i < 3; i++) {
            while (!atomic_load(&w[i].tid))
                sched_yield();
            wait_in_futex(atomic_load(&w[i].tid));
        }
        mpscq_close(q);
        atomic_store(&hold_release[0], 1);
        pthread_join(pxt, NULL);
        atomic_store(&hold_release[1], 1);
        pthread_join(pyt, NULL);
        ck_assert_int_eq(px.rc, MPSCQ_OK);
        ck_assert_int_eq(py.rc, MPSCQ_OK);
        int got = 0;
        for (int i = 0; i < 3; i++) {
            pthread_join(wt[i], NULL);
            ck_assert_int_eq(w[i].timeouts, 0);
            ck_assert_int_eq(w[i].bad, 0);
            got += w[i].got;
        }
        mpscq_test_hook = NULL;
        ck_assert_int_eq(got, 2);
        ck_assert_int_eq(atomic_load(&sleep_timeouts), 0);
        mpscq_destroy(q, NULL, NULL);
    }
}
END_TEST

/* Closed, one ticket unwritten, two consumers asleep: its write wakes one,
 * whose message a third consumer takes first; the woken one then finds
 * the queue closed and drained, and must wake the other sleeper (the
 * close's own wake-up came before they slept again). */
static mpscq_t *cl_q;
static _Atomic int cl_stage;
static void *cl_steal(void *p)
{
    void *m = NULL;
    *(int *)p = mpscq_dequeue(cl_q, &m) == MPSCQ_OK && m == (void *)20;
    return NULL;
}
static void cl_hook(int where, const struct mpscq *q, uint64_t t)
{
    count_parks(where, q, t);
    if (where == MPSCQ_HOOK_AFTER_TICKET && t == 0)
        while (!atomic_load(&hold_release[0]))
            sched_yield();
    int zero = 0;
    if (where == MPSCQ_HOOK_MANY_WOKEN && !t && atomic_load(&hold_release[0]) &&
        atomic_compare_exchange_strong(&cl_stage, &zero, 1)) {
        int ok = 0;
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, cl_steal, &ok), 0);
        pthread_join(th, NULL);
        atomic_store(&cl_stage, ok ? 2 : 3);
    }
}

START_TEST(test_closed_drained_wakes_sleepers)
{
    cl_q = new_many(0, 4);
    mpscq_t *q = cl_q;
    atomic_store(&hold_release[0], 0);
    atomic_store(&cl_stage, 0);
    atomic_store(&park_count, 0);
    atomic_store(&sleep_timeouts, 0);
    mpscq_test_hook = cl_hook;
    struct one px = { .q = q, .msg = (void *)20, .rc = -1 };
    pthread_t pxt, wt[2];
    ck_assert_int_eq(start_one(&pxt, enqueue_one, &px), 0);
    while (atomic_load(&q->tail) < 1)
        sched_yield();
    struct waiter_loop w[2];
    memset(w, 0, sizeof w);
    for (int i = 0; i < 2; i++) {
        w[i].q = q;
        MPSCQ_HG_ATOMIC(&w[i], sizeof w[i]);
        ck_assert_int_eq(pthread_create(&wt[i], NULL, waiter_loop, &w[i]), 0);
    }
    wait_parks(2);
    /* The close wakes both; the unwritten ticket sends them back to
     * sleep. */
    mpscq_close(q);
    wait_parks(4);
    for (int i = 0; i < 2; i++)
        wait_in_futex(atomic_load(&w[i].tid));
    atomic_store(&hold_release[0], 1);
    pthread_join(pxt, NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(wt[i], NULL);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(px.rc, MPSCQ_OK);
    ck_assert_int_eq(atomic_load(&cl_stage), 2); /* the steal happened */
    ck_assert_int_eq(atomic_load(&sleep_timeouts), 0);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(w[i].timeouts, 0);
        ck_assert_int_eq(w[i].got, 0);
    }
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* Destroy drops what is left even when the consumers' entry segment lags
 * chead by several segments (recycling held off). */
START_TEST(test_destroy_drops_lagging)
{
    mpscq_t *q = new_many(0, 2);
    struct mpscq *m = (struct mpscq *)q;
    atomic_store(&m->reclaiming, 1); /* as if a recycler were stopped */
    for (uintptr_t i = 1; i <= 10; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
    void *x;
    for (uintptr_t i = 1; i <= 4; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &x), MPSCQ_OK);
        ck_assert_ptr_eq(x, (void *)i);
    }
    /* Nothing recycled: cseg is still the first segment, chead two
     * segments on (its first ticket is the next message). */
    ck_assert_ptr_eq(atomic_load(&m->cseg), m->oldest);
    ck_assert_uint_eq(atomic_load(&m->chead), 4);
    ndropped = 0;
    mpscq_destroy(q, drop_rec, NULL);
    ck_assert_uint_eq(ndropped, 6);
    for (unsigned i = 0; i < 6; i++)
        ck_assert_uint_eq(dropped[i], i + 5);
}
END_TEST

/* A consumer thread's first call needs its record: when that allocation
 * fails it says NOMEM and takes nothing. */
START_TEST(test_consumer_nomem)
{
    struct tu_alloc a;
    tu_alloc_init(&a);
    mpscq_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.consumers = MPSCQ_CONSUMERS_MANY;
    tu_config_alloc(&cfg, &a);
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &cfg), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(q, (void *)4), MPSCQ_OK);
    atomic_store(&a.fail_from, atomic_load(&a.calls) + 1);
    struct one d = { .q = q, .rc = -1 };
    pthread_t th;
    ck_assert_int_eq(start_one(&th, dequeue_one, &d), 0);
    pthread_join(th, NULL);
    ck_assert_int_eq(d.rc, MPSCQ_NOMEM);
    atomic_store(&a.fail_from, 0);
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK); /* this thread has a record */
    ck_assert_ptr_eq(m, (void *)4);
    mpscq_destroy(q, NULL, NULL);
    ck_assert_int_eq(atomic_load(&a.outstanding), 0);
}
END_TEST

/* ---- bounded mode ---- */

START_TEST(test_bounded_strict)
{
    mpscq_t *q = new_many(8, 4);
    for (uintptr_t i = 0; i < 8; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)(i + 1)), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(q, (void *)99), MPSCQ_FULL);
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)1);
    /* capacity 8: release_batch is 1, the place is back at once. */
    ck_assert_int_eq(mpscq_enqueue(q, (void *)9), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(q, (void *)99), MPSCQ_FULL);
    for (uintptr_t i = 2; i <= 9; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)i); /* the refused tickets are passed */
    }
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* Producers blocked in mpscq_enqueue_wait on a full queue are let in by
 * consumers in mpscq_dequeue_wait, until close and drain. */
struct bp {
    mpscq_t *q;
    unsigned id;
    uint64_t per;
    uint64_t got;
    int bad;
};

static void *bp_producer(void *p)
{
    struct bp *b = p;
    for (uint64_t i = 0; i < b->per; i++)
        if (mpscq_enqueue_wait(b->q, tu_msg(b->id, i), -1) != MPSCQ_OK)
            b->bad = 1;
    return NULL;
}

static void *bp_consumer(void *p)
{
    struct bp *b = p;
    int64_t last[8] = { -1, -1, -1, -1, -1, -1, -1, -1 };
    for (;;) {
        void *m;
        int rc = mpscq_dequeue_wait(b->q, &m, -1);
        if (rc == MPSCQ_CLOSED)
            break;
        if (rc != MPSCQ_OK || tu_producer(m) >= 8 || (int64_t)tu_seq(m) <= last[tu_producer(m)]) {
            b->bad = 1;
            break;
        }
        last[tu_producer(m)] = (int64_t)tu_seq(m);
        b->got++;
    }
    return NULL;
}

START_TEST(test_backpressure_close_drain)
{
    mpscq_t *q = new_many(16, 4);
    uint64_t per = tu_scaled(5000, 300);
    struct bp pr[4], cs[3];
    pthread_t pt[4], ct[3];
    for (unsigned i = 0; i < 3; i++) {
        cs[i] = (struct bp){ q, i, 0, 0, 0 };
        ck_assert_int_eq(pthread_create(&ct[i], NULL, bp_consumer, &cs[i]), 0);
    }
    for (unsigned i = 0; i < 4; i++) {
        pr[i] = (struct bp){ q, i, per, 0, 0 };
        ck_assert_int_eq(pthread_create(&pt[i], NULL, bp_producer, &pr[i]), 0);
    }
    for (unsigned i = 0; i < 4; i++) {
        pthread_join(pt[i], NULL);
        ck_assert(!pr[i].bad);
    }
    mpscq_close(q);
    uint64_t sum = 0;
    for (unsigned i = 0; i < 3; i++) {
        pthread_join(ct[i], NULL);
        ck_assert(!cs[i].bad);
        sum += cs[i].got;
    }
    ck_assert_uint_eq(sum, 4 * per);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* ---- memory ---- */

static void *drain_some(void *p)
{
    struct bp *b = p;
    while (b->got < b->per) {
        void *m;
        if (mpscq_dequeue(b->q, &m) == MPSCQ_OK)
            b->got++;
        else
            sched_yield();
    }
    return NULL;
}

/* A burst through four consumers, then idle: the queue's memory is back
 * to what it was before the burst (the pool's idle bound). */
START_TEST(test_memory_back)
{
    struct tu_alloc a;
    tu_alloc_init(&a);
    mpscq_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.consumers = MPSCQ_CONSUMERS_MANY;
    cfg.segment_slots = 64;
    tu_config_alloc(&cfg, &a);
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &cfg), MPSCQ_OK);
    void *m;
    /* The records of this thread, and the pool filled to its idle bound. */
    for (int i = 0; i < 5 * 64; i++)
        ck_assert_int_eq(mpscq_enqueue(q, NULL), MPSCQ_OK);
    for (int i = 0; i < 5 * 64; i++)
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    long long base = atomic_load(&a.outstanding);
    uint64_t burst = 64 * 400;
    for (uint64_t i = 0; i < burst; i++)
        ck_assert_int_eq(mpscq_enqueue(q, NULL), MPSCQ_OK);
    ck_assert_int_gt(atomic_load(&a.outstanding), base + 300 * 64 * 8);
    struct bp cs[4];
    pthread_t ct[4];
    for (unsigned i = 0; i < 4; i++) {
        cs[i] = (struct bp){ q, i, burst / 4, 0, 0 };
        ck_assert_int_eq(pthread_create(&ct[i], NULL, drain_some, &cs[i]), 0);
    }
    for (unsigned i = 0; i < 4; i++)
        pthread_join(ct[i], NULL);
    /* Idle: two empty dequeues with nothing issued between. */
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    /* The consumer threads' records stay (a record per thread slot), one
     * cache line each; every segment beyond the idle pool went back. */
    long long seg = (long long)((struct mpscq *)q)->seg_bytes;
    ck_assert_int_le(atomic_load(&a.outstanding), base + 4 * 64 + seg);
    mpscq_destroy(q, NULL, NULL);
    ck_assert_int_eq(atomic_load(&a.outstanding), 0);
}
END_TEST

/* ---- review gaps: stopped recycler, scan across recycling, interior at
 * chead, BUSY from callbacks, batch_wait's ends, bounded exactness ---- */

/* Warm a queue up so that its memory is at its idle level: this thread's
 * record, the pool filled to its idle bound. */
static long long warm_base(mpscq_t *q, struct tu_alloc *a, size_t slots)
{
    void *m;
    for (size_t i = 0; i < 5 * slots; i++)
        ck_assert_int_eq(mpscq_enqueue(q, NULL), MPSCQ_OK);
    for (size_t i = 0; i < 5 * slots; i++)
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    return atomic_load(&a->outstanding);
}

/* Idle again: two empty dequeues recycle all but one segment (and the
 * records, one cache line each: 64 bytes for the thread that stopped);
 * destroy gives back the rest. */
static void idle_back(mpscq_t *q, struct tu_alloc *a, long long base)
{
    void *m;
    long long seg = (long long)((struct mpscq *)q)->seg_bytes;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    ck_assert_int_le(atomic_load(&a->outstanding), base + 64 + seg);
    mpscq_destroy(q, NULL, NULL);
    ck_assert_int_eq(atomic_load(&a->outstanding), 0);
}

static mpscq_t *new_counted(struct tu_alloc *a, size_t slots)
{
    tu_alloc_init(a);
    mpscq_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.consumers = MPSCQ_CONSUMERS_MANY;
    cfg.segment_slots = slots;
    tu_config_alloc(&cfg, a);
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &cfg), MPSCQ_OK);
    return q;
}

/* As the single mode (check_memory): a backlog drained past the pool's
 * caught-up bound frees nothing while the consumers work through it; an
 * empty dequeue that finds the queue caught up frees MPSCQ_POOL_EASE of
 * the excess; idle, the pool goes back to its idle bound. */
START_TEST(test_pool_takes_backlog)
{
    struct tu_alloc a;
    mpscq_t *q = new_counted(&a, 4);
    struct mpscq *iq = (struct mpscq *)q;
    long high = iq->pool_high;
    ck_assert_int_ge(high, 100);
    void *m;
    long long peak = tu_backlog(q, &a, (uintptr_t)(high + 2 * MPSCQ_POOL_EASE + 5) * 4);
    ck_assert_int_eq(atomic_load(&a.outstanding), peak);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    ck_assert_int_gt(atomic_load(&iq->pool_count), high);
    ck_assert_int_eq(atomic_load(&a.outstanding),
                     peak - MPSCQ_POOL_EASE * (long long)iq->seg_bytes);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    ck_assert_int_le(atomic_load(&iq->pool_count), MPSCQ_POOL_MAX);
    mpscq_destroy(q, NULL, NULL);
    ck_assert_int_eq(atomic_load(&a.outstanding), 0);
}
END_TEST

/* Caught up with nothing takeable but a ticket not written yet (a
 * producer stopped between ticket and write): not drained, never idle
 * while it stays stopped, and the pool eases all the same, MPSCQ_POOL_EASE
 * segments per empty dequeue. */
START_TEST(test_pool_eases_behind_unwritten_ticket)
{
    struct tu_alloc a;
    mpscq_t *q = new_counted(&a, 4);
    struct mpscq *iq = (struct mpscq *)q;
    long high = iq->pool_high;
    void *m;
    uintptr_t n = (uintptr_t)(high + 4 * MPSCQ_POOL_EASE + 5) * 4;
    tu_backlog(q, &a, n);
    struct one o = { .q = q, .msg = tu_msg(1, 0), .rc = -1, .timeout = 0 };
    pthread_t th;
    start_stopped(MPSCQ_HOOK_AFTER_TICKET, n, &th, enqueue_one, &o);
    long long before = atomic_load(&a.outstanding);
    long pool = atomic_load(&iq->pool_count);
    ck_assert_int_gt(pool, high + 2 * MPSCQ_POOL_EASE);
    for (int k = 1; k <= 2; k++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
        ck_assert_int_eq(atomic_load(&a.outstanding),
                         before - k * MPSCQ_POOL_EASE * (long long)iq->seg_bytes);
        ck_assert_int_le(atomic_load(&iq->pool_count), pool);
    }
    finish_stopped(th, &o);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(1, 0));
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    ck_assert_int_le(atomic_load(&iq->pool_count), MPSCQ_POOL_MAX);
    mpscq_destroy(q, NULL, NULL);
    ck_assert_int_eq(atomic_load(&a.outstanding), 0);
}
END_TEST

struct takes {
    mpscq_t *q;
    unsigned n;
    void *msg[8];
    int rc[8];
};

static void *take_n(void *p)
{
    struct takes *k = p;
    for (unsigned i = 0; i < k->n; i++)
        k->rc[i] = mpscq_dequeue(k->q, &k->msg[i]);
    return NULL;
}

/* A consumer stopped while it holds the recycler's flag: the others go
 * on taking everything (they skip recycling, they never wait for the
 * flag); memory waits for it, and is recycled once it goes on. */
START_TEST(test_stalled_recycler)
{
    struct tu_alloc a;
    mpscq_t *q = new_counted(&a, 4);
    long long base = warm_base(q, &a, 4);
    uint64_t t0 = (uint64_t)5 * 4; /* tickets the warm-up used */
    for (uint64_t i = 0; i < 8; i++)
        ck_assert_int_eq(mpscq_enqueue(q, tu_msg(0, i)), MPSCQ_OK);
    /* Its fourth take ends a segment: chead moves to t0 + 4 and it
     * recycles; it stops there, flag held. */
    stop_arm(MPSCQ_HOOK_MANY_RECLAIM, t0 + 4);
    struct takes k = { .q = q, .n = 4 };
    MPSCQ_HG_ATOMIC(&k, sizeof k);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, take_n, &k), 0);
    stop_wait();
    void *m;
    for (uint64_t i = 4; i < 8; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, tu_msg(0, i));
    }
    /* 100 segments more go through while it is stopped. */
    for (uint64_t i = 8; i < 408; i++)
        ck_assert_int_eq(mpscq_enqueue(q, tu_msg(0, i)), MPSCQ_OK);
    for (uint64_t i = 8; i < 408; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, tu_msg(0, i));
    }
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    /* Nobody else recycled: the drained segments are all still there. */
    long long seg = (long long)((struct mpscq *)q)->seg_bytes;
    ck_assert_int_ge(atomic_load(&a.outstanding), base + 90 * seg);
    stop_release();
    pthread_join(th, NULL);
    mpscq_test_hook = NULL;
    for (unsigned i = 0; i < 4; i++) {
        ck_assert_int_eq(k.rc[i], MPSCQ_OK);
        ck_assert_ptr_eq(k.msg[i], tu_msg(0, i));
    }
    /* Idle: the next empty dequeues recycle all of it. */
    idle_back(q, &a, base);
}
END_TEST

/* A consumer stopped mid-dequeue, its hazard on cseg published, while
 * the others drain many segments and recycle: its segment and every
 * later one stay (the hazard), and when it goes on its scan walks them
 * to the one message left. */
START_TEST(test_scan_across_recycling)
{
    struct tu_alloc a;
    mpscq_t *q = new_counted(&a, 4);
    long long base = warm_base(q, &a, 4);
    uint64_t t0 = (uint64_t)5 * 4;
    for (uint64_t i = 0; i < 2; i++)
        ck_assert_int_eq(mpscq_enqueue(q, tu_msg(0, i)), MPSCQ_OK);
    stop_arm(MPSCQ_HOOK_MANY_PROTECTED, t0);
    struct takes k = { .q = q, .n = 1 };
    MPSCQ_HG_ATOMIC(&k, sizeof k);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, take_n, &k), 0);
    stop_wait();
    void *m;
    for (uint64_t i = 0; i < 402; i++) {
        if (i >= 2)
            ck_assert_int_eq(mpscq_enqueue(q, tu_msg(0, i)), MPSCQ_OK);
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, tu_msg(0, i));
    }
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    /* The stopped scan's hazard holds every segment from its own on. */
    long long seg = (long long)((struct mpscq *)q)->seg_bytes;
    ck_assert_int_ge(atomic_load(&a.outstanding), base + 90 * seg);
    ck_assert_int_eq(mpscq_enqueue(q, tu_msg(1, 0)), MPSCQ_OK);
    stop_release();
    pthread_join(th, NULL);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(k.rc[0], MPSCQ_OK);
    ck_assert_ptr_eq(k.msg[0], tu_msg(1, 0));
    idle_back(q, &a, base);
}
END_TEST

/* A batch's head claimed by a consumer that stops before it returns
 * (chead has not moved past it): another consumer takes the interiors,
 * in order, without waiting for it. */
START_TEST(test_interior_after_stopped_head)
{
    mpscq_t *q = new_many(0, 8);
    void *in[3] = { tu_msg(0, 0), tu_msg(0, 1), tu_msg(0, 2) };
    ck_assert_int_eq(mpscq_enqueue_batch(q, in, 3), MPSCQ_OK);
    stop_arm(MPSCQ_HOOK_MANY_CLAIMED, 0);
    struct takes k = { .q = q, .n = 1 };
    MPSCQ_HG_ATOMIC(&k, sizeof k);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, take_n, &k), 0);
    stop_wait();
    ck_assert_uint_eq(atomic_load(&((struct mpscq *)q)->chead), 0);
    void *m;
    for (uint64_t i = 1; i < 3; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, tu_msg(0, i));
    }
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    stop_release();
    pthread_join(th, NULL);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(k.rc[0], MPSCQ_OK);
    ck_assert_ptr_eq(k.msg[0], tu_msg(0, 0));
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* A callback (log_fn, alloc_fn) that calls back into a consumer call of
 * the same thread gets MPSCQ_BUSY from each of the four, and the outer
 * call completes. */
struct reenter {
    mpscq_t *q;
    _Atomic int calls;
    int rc[4];
    size_t n;
    struct tu_alloc a;
};
static struct reenter re;

static void reenter_all(void)
{
    void *m = (void *)0x1, *b[2];
    re.rc[0] = mpscq_dequeue(re.q, &m);
    re.rc[1] = mpscq_dequeue_wait(re.q, &m, 0);
    re.rc[2] = mpscq_dequeue_batch_wait(re.q, b, 2, &re.n, 0);
    re.rc[3] = (int)mpscq_dequeue_batch(re.q, b, 2);
    atomic_fetch_add(&re.calls, 1);
}

static void reenter_log(int level, const char *msg, void *arg)
{
    (void)level;
    (void)msg;
    (void)arg;
    reenter_all();
}

static void *reenter_alloc(size_t size, void *arg)
{
    /* The record of a consumer's first call: re-enter from inside it. */
    if (size == MPSCQ_CACHELINE && re.q && !atomic_load(&re.calls))
        reenter_all();
    void *p = NULL;
    if (posix_memalign(&p, 64, size))
        return NULL;
    atomic_fetch_add(&((struct tu_alloc *)arg)->outstanding, (long long)size);
    return p;
}

static void reenter_free(void *p, size_t size, void *arg)
{
    atomic_fetch_sub(&((struct tu_alloc *)arg)->outstanding, (long long)size);
    free(p);
}

static void reenter_check(void)
{
    ck_assert_int_eq(atomic_load(&re.calls), 1);
    ck_assert_int_eq(re.rc[0], MPSCQ_BUSY);
    ck_assert_int_eq(re.rc[1], MPSCQ_BUSY);
    ck_assert_int_eq(re.rc[2], MPSCQ_BUSY);
    ck_assert_uint_eq(re.n, 0);
    ck_assert_int_eq(re.rc[3], 0); /* the batch: nothing taken */
}

static void *first_dequeue(void *p)
{
    struct takes *k = p;
    k->rc[0] = mpscq_dequeue(k->q, &k->msg[0]);
    return NULL;
}

START_TEST(test_busy_from_callbacks)
{
    mpscq_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.consumers = MPSCQ_CONSUMERS_MANY;
    cfg.log_fn = reenter_log;
    tu_alloc_init(&re.a);
    cfg.alloc_fn = reenter_alloc;
    cfg.free_fn = reenter_free;
    cfg.alloc_arg = &re.a;
    mpscq_t *q;
    re.q = NULL;
    ck_assert_int_eq(mpscq_create(&q, &cfg), MPSCQ_OK);
    void *m;
    /* log_fn: the contention warning, from inside the claim loop. */
    ck_assert_int_eq(mpscq_enqueue(q, tu_msg(0, 0)), MPSCQ_OK);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK); /* records exist */
    ck_assert_int_eq(mpscq_enqueue(q, tu_msg(0, 1)), MPSCQ_OK);
    atomic_store(&re.calls, 0);
    re.n = 99;
    re.q = q;
    atomic_store(&mpscq_test_cas_failures, 1000);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(0, 1));
    reenter_check();
    /* alloc_fn: a new thread's first dequeue allocates its record. */
    ck_assert_int_eq(mpscq_enqueue(q, tu_msg(0, 2)), MPSCQ_OK);
    atomic_store(&re.calls, 0);
    re.n = 99;
    struct takes k = { .q = q, .n = 1 };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, first_dequeue, &k), 0);
    pthread_join(th, NULL);
    ck_assert_int_eq(k.rc[0], MPSCQ_OK);
    ck_assert_ptr_eq(k.msg[0], tu_msg(0, 2));
    reenter_check();
    re.q = NULL;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    mpscq_destroy(q, NULL, NULL);
    ck_assert_int_eq(atomic_load(&re.a.outstanding), 0);
}
END_TEST

struct bwait {
    mpscq_t *q;
    void *b[8];
    size_t n;
    _Atomic int rc;
};

static void *batch_wait_forever(void *p)
{
    struct bwait *w = p;
    w->rc = mpscq_dequeue_batch_wait(w->q, w->b, 8, &w->n, -1);
    return NULL;
}

static _Atomic int parked_once;
static void note_park(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    (void)t;
    if (where == MPSCQ_HOOK_PARK)
        atomic_store(&parked_once, 1);
}

/* mpscq_dequeue_batch_wait's other ends: TIMEOUT with *n = 0, what is
 * ready up to max, CLOSED once drained, and a sleeper woken by close. */
START_TEST(test_batch_wait_ends)
{
    mpscq_t *q = new_many(0, 4);
    void *b[8];
    size_t n = 7;
    ck_assert_int_eq(mpscq_dequeue_batch_wait(q, b, 8, &n, 0), MPSCQ_TIMEOUT);
    ck_assert_uint_eq(n, 0);
    n = 7;
    ck_assert_int_eq(mpscq_dequeue_batch_wait(q, b, 8, &n, 2000000), MPSCQ_TIMEOUT);
    ck_assert_uint_eq(n, 0);
    for (uint64_t i = 0; i < 10; i++)
        ck_assert_int_eq(mpscq_enqueue(q, tu_msg(0, i)), MPSCQ_OK);
    mpscq_close(q);
    ck_assert_int_eq(mpscq_dequeue_batch_wait(q, b, 8, &n, -1), MPSCQ_OK);
    ck_assert_uint_eq(n, 8);
    for (uint64_t i = 0; i < 8; i++)
        ck_assert_ptr_eq(b[i], tu_msg(0, i));
    ck_assert_int_eq(mpscq_dequeue_batch_wait(q, b, 8, &n, -1), MPSCQ_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_ptr_eq(b[0], tu_msg(0, 8));
    ck_assert_ptr_eq(b[1], tu_msg(0, 9));
    n = 7;
    ck_assert_int_eq(mpscq_dequeue_batch_wait(q, b, 8, &n, -1), MPSCQ_CLOSED);
    ck_assert_uint_eq(n, 0);
    mpscq_destroy(q, NULL, NULL);

    /* Asleep with no timeout: the close ends it. */
    q = new_many(0, 4);
    atomic_store(&parked_once, 0);
    mpscq_test_hook = note_park;
    struct bwait w = { .q = q, .n = 7, .rc = -1 };
    MPSCQ_HG_ATOMIC(&w, sizeof w);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, batch_wait_forever, &w), 0);
    while (!atomic_load(&parked_once))
        sched_yield();
    mpscq_close(q);
    pthread_join(th, NULL);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(w.rc, MPSCQ_CLOSED);
    ck_assert_uint_eq(w.n, 0);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* Bounded, capacity 64 (places come back in batches of 8): consumers in
 * three threads take the messages; never more than 64 accepted and not
 * taken, and FULL at most 7 places early. */
START_TEST(test_bounded_exact_across_consumers)
{
    mpscq_t *q = new_many(64, 16);
    ck_assert_uint_eq(((struct mpscq *)q)->release_batch, 8);
    uint64_t next_in = 0, next_out = 0;
    /* Totals 1, 8, 11, 16, 32, 40, 42, 48: some end exactly on a batch. */
    static const unsigned takes[] = { 1, 7, 3, 5, 16, 8, 2, 6 };
    for (unsigned round = 0; round < sizeof takes / sizeof takes[0]; round++) {
        /* Fill: exactly the free places are accepted. */
        uint64_t queued;
        while (mpscq_enqueue(q, tu_msg(0, next_in)) == MPSCQ_OK)
            next_in++;
        queued = next_in - next_out;
        ck_assert_uint_le(queued, 64);
        ck_assert_uint_ge(queued, 64 - 7);
        /* Take some, spread over threads taking up to three each. */
        unsigned take = takes[round];
        for (unsigned done = 0; done < take;) {
            struct takes k = { .q = q, .n = take - done < 3 ? take - done : 3 };
            pthread_t th;
            ck_assert_int_eq(pthread_create(&th, NULL, take_n, &k), 0);
            pthread_join(th, NULL);
            for (unsigned i = 0; i < k.n; i++) {
                ck_assert_int_eq(k.rc[i], MPSCQ_OK);
                ck_assert_ptr_eq(k.msg[i], tu_msg(0, next_out));
                next_out++;
            }
            done += k.n;
        }
    }
    /* Drain: an EMPTY publishes every take, so all 64 places are back. */
    void *m;
    while (mpscq_dequeue(q, &m) == MPSCQ_OK)
        ck_assert_ptr_eq(m, tu_msg(0, next_out++));
    ck_assert_uint_eq(next_out, next_in);
    for (uint64_t i = 0; i < 64; i++)
        ck_assert_int_eq(mpscq_enqueue(q, tu_msg(1, i)), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(q, tu_msg(1, 64)), MPSCQ_FULL);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* ---- the private cursor ---- */

/* Producers stopped between ticket and write hold chead at the first
 * one's ticket.  Two consumers take n messages behind them; each
 * remembers what it passed (its cursor, design.md s. 16), so the state
 * bytes they read grow with n, not with n * n / 2.  Also for a batch
 * stopped before its head is written (one hole of 8 tickets), and for
 * more stopped producers than a cursor has room for (it then reads on
 * from the first it could not record: correct, not bounded). */
struct alt {
    mpscq_t *q;
    _Atomic int turn;   /* 1: the helper takes one; 0: taken; -1: quit */
    void *msg;
    int rc;
    unsigned long work;
};

static void *alt_helper(void *p)
{
    struct alt *a = p;
    for (;;) {
        int t;
        while ((t = atomic_load(&a->turn)) == 0)
            sched_yield();
        if (t < 0)
            break;
        a->rc = mpscq_dequeue(a->q, &a->msg);
        atomic_store(&a->turn, 0);
    }
    a->work = mpscq_pend_work;
    return NULL;
}

static void *stalled_batch(void *p)
{
    struct one *o = p;
    void *b[8];
    for (uint64_t i = 0; i < 8; i++)
        b[i] = tu_msg(3, i);
    o->rc = mpscq_enqueue_batch(o->q, b, 8);
    return NULL;
}

static void run_stalled_scan(int batch, unsigned nstalled, uint64_t n, int bounded)
{
    mpscq_t *q = new_many(0, 64);
    pthread_t st[12];
    struct one so[12];
    unsigned per = batch ? 8 : 1;
    for (unsigned j = 0; j < nstalled; j++) {
        /* Stalled j holds tickets from j * (per + 1); one message of
         * producer 1 after it keeps the holes apart. */
        int hook = batch ? MPSCQ_HOOK_BEFORE_PUBLISH : MPSCQ_HOOK_AFTER_TICKET;
        if (j == 0)
            stop_arm(hook, 0);
        else
            stop_rearm(hook, (uint64_t)j * (per + 1));
        so[j] = (struct one){ .q = q, .msg = tu_msg(4, j), .rc = -1 };
        ck_assert_int_eq(start_one(&st[j], batch ? stalled_batch : enqueue_one, &so[j]), 0);
        stop_wait();
        ck_assert_int_eq(mpscq_enqueue(q, tu_msg(1, j)), MPSCQ_OK);
    }
    struct alt a = { .q = q };
    MPSCQ_HG_ATOMIC(&a, sizeof a);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, alt_helper, &a), 0);
    unsigned long w0 = mpscq_pend_work;
    uint64_t next1 = 0, next2 = 0;
    for (uint64_t i = 0; i < n + nstalled; i++) {
        if (i >= nstalled)
            ck_assert_int_eq(mpscq_enqueue(q, tu_msg(2, i - nstalled)), MPSCQ_OK);
        void *m;
        if (i % 2) {
            atomic_store(&a.turn, 1);
            while (atomic_load(&a.turn) != 0)
                sched_yield();
            ck_assert_int_eq(a.rc, MPSCQ_OK);
            m = a.msg;
        } else
            ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        /* Each producer's messages in order, whoever takes them. */
        if (tu_producer(m) == 1)
            ck_assert_uint_eq(tu_seq(m), next1++);
        else {
            ck_assert_uint_eq(tu_producer(m), 2);
            ck_assert_uint_eq(tu_seq(m), next2++);
        }
    }
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    atomic_store(&a.turn, -1);
    pthread_join(th, NULL);
    unsigned long work = mpscq_pend_work - w0 + a.work;
    /* A dequeue reads its holes (per * nstalled tickets) and what the
     * other consumer took since its last call, twice when it refreshes
     * its limit; without the cursor it reads from chead: i at the i-th. */
    if (bounded)
        ck_assert_msg(work <= 2 * (per * nstalled + 4) * n, "%lu state reads for %llu takes",
                      work, (unsigned long long)(n + nstalled));
    /* The stopped producers go on; their messages come out whole. */
    stop_release();
    for (unsigned j = 0; j < nstalled; j++) {
        pthread_join(st[j], NULL);
        ck_assert_int_eq(so[j].rc, MPSCQ_OK);
    }
    mpscq_test_hook = NULL;
    uint64_t got = 0, next3 = 0;
    while (mpscq_dequeue(q, &m) == MPSCQ_OK) {
        if (batch && tu_producer(m) == 3) {
            /* Eight batches of producer 3's 0..7: in order within each. */
            ck_assert_uint_eq(tu_seq(m), next3 % 8);
            next3++;
        }
        got++;
    }
    ck_assert_uint_eq(got, per * nstalled);
    mpscq_destroy(q, NULL, NULL);
}

START_TEST(test_cursor_stalled_producer)
{
    run_stalled_scan(0, 1, tu_scaled(3000, 300), 1);
    run_stalled_scan(0, 3, tu_scaled(3000, 300), 1);
}
END_TEST

START_TEST(test_cursor_stalled_batch)
{
    run_stalled_scan(1, 1, tu_scaled(3000, 300), 1);
    run_stalled_scan(1, 2, tu_scaled(3000, 300), 1);
}
END_TEST

START_TEST(test_cursor_full)
{
    run_stalled_scan(0, 11, tu_scaled(600, 100), 0);
}
END_TEST

/* A consumer thread serving several queues in turn keeps a cursor for
 * each (up to four): behind a stopped producer in every queue, its
 * dequeues read a few states each, not every one from chead (with one
 * cursor per thread, each call on the other queue started over). */
static void *batch3(void *p)
{
    struct one *o = p;
    void *b[3] = { tu_msg(3, 0), tu_msg(3, 1), tu_msg(3, 2) };
    o->rc = mpscq_enqueue_batch(o->q, b, 3);
    return NULL;
}

/* A hole whose front moved onto a batch interior: the thread passed a
 * stopped batch (head at a segment's last slot, interiors in the next),
 * another consumer took the head and raised chead past it (its segment
 * ended); the thread's hole now starts at an interior whose head it
 * never read, and that interior is takeable (its predecessor is below
 * chead: done). */
START_TEST(test_hole_front_interior)
{
    mpscq_t *q = new_many(0, 64);
    void *m;
    for (uint64_t i = 0; i < 63; i++) {
        ck_assert_int_eq(mpscq_enqueue(q, tu_msg(1, i)), MPSCQ_OK);
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    }
    struct one b = { .q = q, .rc = -1 };
    pthread_t bt;
    start_stopped(MPSCQ_HOOK_BEFORE_PUBLISH, 63, &bt, batch3, &b);
    /* Tickets 63 (head, unwritten), 64 and 65 (interiors, written): this
     * thread passes them as one hole and takes ticket 66. */
    ck_assert_int_eq(mpscq_enqueue(q, tu_msg(2, 0)), MPSCQ_OK);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(2, 0));
    finish_stopped(bt, &b);
    /* Another thread takes the head; chead moves to 64 (segment end). */
    struct one d = { .q = q, .rc = -1 };
    pthread_t dt;
    ck_assert_int_eq(start_one(&dt, dequeue_one, &d), 0);
    pthread_join(dt, NULL);
    ck_assert_int_eq(d.rc, MPSCQ_OK);
    ck_assert_ptr_eq(d.msg, tu_msg(3, 0));
    ck_assert_uint_eq(atomic_load(&((struct mpscq *)q)->chead), 64);
    /* This thread: the interiors, in order. */
    for (uint64_t i = 1; i < 3; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, tu_msg(3, i));
    }
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

START_TEST(test_cursor_per_queue)
{
    enum { NQ = 4 };
    const uint64_t n = tu_scaled(1500, 200);
    mpscq_t *q[NQ];
    struct one so[NQ];
    pthread_t st[NQ];
    for (int j = 0; j < NQ; j++) {
        q[j] = new_many(0, 64);
        if (j == 0)
            stop_arm(MPSCQ_HOOK_AFTER_TICKET, 0);
        else
            stop_rearm(MPSCQ_HOOK_AFTER_TICKET, 0);
        so[j] = (struct one){ .q = q[j], .msg = tu_msg(1, (uint64_t)j), .rc = -1 };
        ck_assert_int_eq(start_one(&st[j], enqueue_one, &so[j]), 0);
        stop_wait();
    }
    unsigned long w0 = mpscq_pend_work;
    void *m;
    for (uint64_t i = 0; i < n; i++)
        for (int j = 0; j < NQ; j++) {
            ck_assert_int_eq(mpscq_enqueue(q[j], tu_msg(2, i)), MPSCQ_OK);
            ck_assert_int_eq(mpscq_dequeue(q[j], &m), MPSCQ_OK);
            ck_assert_ptr_eq(m, tu_msg(2, i));
        }
    unsigned long work = mpscq_pend_work - w0;
    /* Each dequeue: its hole (1) and its message, twice after a limit
     * refresh; from chead it would be i + 1 at the i-th. */
    ck_assert_msg(work <= 6 * NQ * n, "%lu state reads for %llu takes", work,
                  (unsigned long long)(NQ * n));
    stop_release();
    for (int j = 0; j < NQ; j++) {
        pthread_join(st[j], NULL);
        ck_assert_int_eq(so[j].rc, MPSCQ_OK);
    }
    mpscq_test_hook = NULL;
    for (int j = 0; j < NQ; j++) {
        ck_assert_int_eq(mpscq_dequeue(q[j], &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, tu_msg(1, (uint64_t)j));
        ck_assert_int_eq(mpscq_dequeue(q[j], &m), MPSCQ_EMPTY);
        mpscq_destroy(q[j], NULL, NULL);
    }
}
END_TEST

/* mpscq_stats and mpscq_size while a thread's first call links its
 * record (stopped between making it the list's head and linking it to
 * the older ones): the takes counted in the older records still count.
 * (A sum over the list stopped at the unlinked record: dequeued fell to
 * 0 for that instant, and test_exact_16p4c's monitor saw it go back.) */
START_TEST(test_stats_record_linking)
{
    mpscq_t *q = new_many(0, 4);
    for (uintptr_t i = 0; i < 10; i++)
        ck_assert_int_eq(mpscq_enqueue(q, tu_msg(1, i)), MPSCQ_OK);
    for (uintptr_t i = 0; i < 6; i++) {
        void *m;
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, tu_msg(1, i));
    }
    struct one a = { .q = q, .msg = tu_msg(2, 0), .rc = -1, .timeout = 0 };
    pthread_t th;
    start_stopped(MPSCQ_HOOK_REC_LINKING, 0, &th, enqueue_one, &a);
    struct mpscq_stats st;
    mpscq_stats(q, &st);
    ck_assert_uint_eq(st.enqueued, 10);
    ck_assert_uint_eq(st.dequeued, 6);
    ck_assert_uint_eq(mpscq_size(q), 4);
    finish_stopped(th, &a);
    mpscq_stats(q, &st);
    ck_assert_uint_eq(st.enqueued, 11);
    ck_assert_uint_eq(st.dequeued, 6);
    ck_assert_uint_eq(mpscq_size(q), 5);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* The baton's look (a woken consumer that took a message checks for
 * another before leaving the other sleepers asleep) reads from the
 * thread's cursor too: behind a producer stopped between ticket and
 * write, a woken consumer's whole dequeue_wait reads a few states, not
 * every one from chead (it read n + 1 before the cursor). */
struct sleeper {
    mpscq_t *q;
    void *msg;
    int rc0;
    unsigned long work;
    _Atomic int rc;     /* stored last (seq_cst): read it first */
};

static void *sleeper_main(void *p)
{
    struct sleeper *w = p;
    void *m;
    /* A look first: the cursor learns the tickets behind the stopped
     * one, so the wait's own takes read little. */
    w->rc0 = mpscq_dequeue(w->q, &m);
    unsigned long w0 = mpscq_pend_work;
    int rc = mpscq_dequeue_wait(w->q, &w->msg, -1);
    w->work = mpscq_pend_work - w0;
    atomic_store(&w->rc, rc);
    return NULL;
}

START_TEST(test_baton_reads_from_cursor)
{
    const uint64_t n = 4000;
    mpscq_t *q = new_many(0, 64);
    struct one a = { .q = q, .msg = tu_msg(1, 0), .rc = -1, .timeout = 0 };
    pthread_t pt;
    start_stopped(MPSCQ_HOOK_AFTER_TICKET, 0, &pt, enqueue_one, &a);
    void *m;
    for (uint64_t i = 0; i < n; i++) {
        ck_assert_int_eq(mpscq_enqueue(q, tu_msg(2, i)), MPSCQ_OK);
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, tu_msg(2, i));
    }
    struct sleeper w[2];
    pthread_t wt[2];
    for (int i = 0; i < 2; i++) {
        w[i] = (struct sleeper){ .q = q, .rc = -1 };
        MPSCQ_HG_ATOMIC(&w[i], sizeof w[i]);
        ck_assert_int_eq(pthread_create(&wt[i], NULL, sleeper_main, &w[i]), 0);
    }
    /* Both counted as sleepers: whichever takes the next message passes
     * the baton with the other one counted. */
    while (atomic_load(&q->csleepers) < 2)
        sched_yield();
    ck_assert_int_eq(mpscq_enqueue(q, tu_msg(3, 0)), MPSCQ_OK);
    int first;
    for (first = 0; atomic_load(&w[first].rc) < 0; first = !first)
        sched_yield();
    ck_assert_int_eq(w[first].rc, MPSCQ_OK);
    ck_assert_ptr_eq(w[first].msg, tu_msg(3, 0));
    ck_assert_int_eq(w[first].rc0, MPSCQ_EMPTY);
    ck_assert_msg(w[first].work < n / 4, "a woken consumer read %lu states behind %llu done",
                  w[first].work, (unsigned long long)n);
    /* The stopped producer goes on: its message wakes the other. */
    stop_release();
    pthread_join(pt, NULL);
    ck_assert_int_eq(a.rc, MPSCQ_OK);
    for (int i = 0; i < 2; i++)
        pthread_join(wt[i], NULL);
    mpscq_test_hook = NULL; /* every thread that reads it joined */
    ck_assert_int_eq(w[!first].rc, MPSCQ_OK);
    ck_assert_ptr_eq(w[!first].msg, tu_msg(1, 0));
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

static void *close_one(void *p)
{
    struct one *o = p;
    mpscq_close(o->q);
    atomic_store(&o->rc, MPSCQ_OK);
    return NULL;
}

/* A consumer that looks while mpscq_close is between its two steps
 * (closed bit set on tail, close ticket not stored), after a producer
 * took a ticket past the close ticket (refused, never written): it
 * reports EMPTY then, and CLOSED once the close is complete.  (The
 * private cursor kept that ticket as a hole, never written, so this
 * thread said EMPTY forever and its dequeue_wait never returned.) */
START_TEST(test_close_gap)
{
    mpscq_t *q = new_many(0, 8);
    void *m;
    for (uintptr_t i = 0; i < 3; i++)
        ck_assert_int_eq(mpscq_enqueue(q, tu_msg(1, i)), MPSCQ_OK);
    for (uintptr_t i = 0; i < 3; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, tu_msg(1, i));
    }
    struct one c = { .q = q, .msg = NULL, .rc = -1, .timeout = 0 };
    pthread_t th;
    start_stopped(MPSCQ_HOOK_CLOSE_GAP, 3, &th, close_one, &c);
    ck_assert_int_eq(mpscq_enqueue(q, tu_msg(1, 3)), MPSCQ_CLOSED);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    finish_stopped(th, &c);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_CLOSED);
    void *b[4];
    ck_assert_uint_eq(mpscq_dequeue_batch(q, b, 4), 0);
    ck_assert_int_eq(mpscq_dequeue_wait(q, &m, -1), MPSCQ_CLOSED);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST


/* ---- yielding to a hot consumer ---- */

/* The hot-consumer measurement's clock, faked: each reading moves it by
 * hot_step ns (1: every consumer takes hot).  Nothing here asserts in a
 * hook or in a helper thread: a failed assertion there would leave the
 * library's per-call state set (in_many) when the suite does not fork
 * (Valgrind); mismatches are counted and checked by the test itself. */
static _Atomic uint64_t hot_now, hot_step;
static uint64_t fake_hot_clock(void)
{
    return atomic_fetch_add(&hot_now, atomic_load(&hot_step)) + atomic_load(&hot_step);
}

/* The windows of the calls that stood aside, and their length in ns in
 * all; in each window, hot_in_window() if set (run by the thread
 * standing aside). */
static _Atomic unsigned yield_windows;
static _Atomic uint64_t yield_ns;
static void (*hot_in_window)(void);
static void hot_yield_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    if (where != MPSCQ_HOOK_MANY_YIELD)
        return;
    atomic_fetch_add(&yield_ns, t);
    atomic_fetch_add(&yield_windows, 1);
    if (hot_in_window)
        hot_in_window();
}

/* What one call that stands aside for a hot consumer that keeps taking
 * waits at most: windows of MPSCQ_HOT_WINDOW0_NS, then
 * MPSCQ_HOT_WINDOW_NS, the last one cut at MPSCQ_HOT_WAIT_NS. */
static unsigned hot_windows_max(void)
{
    unsigned w = 0, ns = MPSCQ_HOT_WINDOW0_NS, waited = 0;
    while (waited < MPSCQ_HOT_WAIT_NS) {
        waited += ns;
        w++;
        if (ns < MPSCQ_HOT_WINDOW_NS)
            ns <<= 1;
        if (ns > MPSCQ_HOT_WAIT_NS - waited)
            ns = MPSCQ_HOT_WAIT_NS - waited;
    }
    return w;
}

/* A consumer thread that takes on request: `want` takes in all so far;
 * it answers with `done`, and stops when `want` is ~0.  A call that
 * does not return `expect` is counted in `bad`. */
#define TAKER_MAX 512
struct taker {
    mpscq_t *q;
    _Atomic unsigned want, done, bad;
    _Atomic int expect;          /* MPSCQ_OK, or MPSCQ_EMPTY */
    void *got[TAKER_MAX];
};
static struct taker hot_k;       /* one per test: the teardown stops it */
static pthread_t hot_k_th;
static _Atomic int hot_k_running;

static void *taker_run(void *p)
{
    struct taker *k = p;
    for (;;) {
        unsigned w = atomic_load(&k->want);
        if (w == ~0u)
            return NULL;
        unsigned d = atomic_load(&k->done);
        if (d == w) {
            sched_yield();
            continue;
        }
        void *m = NULL;
        if (d >= TAKER_MAX || mpscq_dequeue(k->q, &m) != atomic_load(&k->expect))
            atomic_fetch_add(&k->bad, 1);
        else
            k->got[d] = m;
        atomic_store(&k->done, d + 1);
    }
}

static void taker_take(struct taker *k, unsigned n)
{
    unsigned w = atomic_load(&k->want) + n;
    atomic_store(&k->want, w);
    while (atomic_load(&k->done) != w)
        sched_yield();
}

static void taker_start(mpscq_t *q)
{
    MPSCQ_HG_ATOMIC(&hot_k, sizeof hot_k); /* got[] is read after taker_take */
    hot_k.q = q;
    atomic_store(&hot_k.want, 0);
    atomic_store(&hot_k.done, 0);
    atomic_store(&hot_k.bad, 0);
    atomic_store(&hot_k.expect, MPSCQ_OK);
    ck_assert_int_eq(pthread_create(&hot_k_th, NULL, taker_run, &hot_k), 0);
    atomic_store(&hot_k_running, 1);
}

static void taker_stop(void)
{
    if (!atomic_exchange(&hot_k_running, 0))
        return;
    atomic_store(&hot_k.want, ~0u);
    pthread_join(hot_k_th, NULL);
}

static void hot_setup(uint64_t step)
{
    MPSCQ_HG_ATOMIC(&hot_in_window, sizeof hot_in_window);
    atomic_store(&hot_now, 1000);
    atomic_store(&hot_step, step);
    atomic_store(&yield_windows, 0);
    atomic_store(&yield_ns, 0);
    hot_in_window = NULL;
    mpscq_test_hot_clock = fake_hot_clock;
    mpscq_test_hook = hot_yield_hook;
}

/* The core case's teardown (also after a failure, without fork): no
 * taker left running, no hook or test clock left set. */
static void hot_teardown(void)
{
    taker_stop();
    mpscq_test_hook = NULL;
    mpscq_test_hot_clock = NULL;
    hot_in_window = NULL;
}

/* Readings for the assertions (their failure messages name these). */
static uint64_t chot_of(mpscq_t *q)
{
    return atomic_load(&q->chot);
}
static unsigned windows_seen(void)
{
    return atomic_load(&yield_windows);
}
static uint64_t ns_seen(void)
{
    return atomic_load(&yield_ns);
}
static unsigned taker_bad(void)
{
    return atomic_load(&hot_k.bad);
}

/* Two measurements of MPSCQ_HOT_TAKES takes: the first starts the
 * clock, the second says hot. */
#define HOT_AFTER (2 * MPSCQ_HOT_TAKES)

static mpscq_t *hot_queue(unsigned n)
{
    mpscq_t *q = new_many(0, 64);
    for (uint64_t i = 0; i < n; i++)
        ck_assert_int_eq(mpscq_enqueue(q, tu_msg(0, i)), MPSCQ_OK);
    return q;
}

/* The helper thread becomes hot: HOT_AFTER takes with a clock of 1 ns
 * per reading; its word is set. */
static void taker_hot(mpscq_t *q)
{
    taker_start(q);
    taker_take(&hot_k, HOT_AFTER);
    ck_assert_uint_eq(taker_bad(), 0);
    ck_assert_uint_ne(chot_of(q), 0);
}

/* A hot consumer that stops taking delays another consumer's call by
 * one window, not more: that call finds no take in its window, clears
 * the hot word and takes; the next call does not wait. */
START_TEST(test_hot_stopped_one_window)
{
    mpscq_t *q = hot_queue(HOT_AFTER + 8);
    hot_setup(1);
    taker_hot(q);
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(0, HOT_AFTER));
    ck_assert_uint_eq(windows_seen(), 1);
    ck_assert_uint_eq(chot_of(q), 0);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(0, HOT_AFTER + 1));
    ck_assert_uint_eq(windows_seen(), 1); /* no second wait */
    ck_assert_uint_eq(ns_seen(), MPSCQ_HOT_WINDOW0_NS);
    taker_stop();
    for (unsigned i = 0; i < HOT_AFTER; i++)
        ck_assert_ptr_eq(hot_k.got[i], tu_msg(0, i));
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

static void take_one_in_window(void)
{
    taker_take(&hot_k, 1);
}

/* The helper thread hot, taking one message in each window of this
 * thread's next call, which finds `extra` messages after the helper's
 * HOT_AFTER and the bound's windows; returns the queue. */
static mpscq_t *hot_keeps_taking(unsigned extra)
{
    ck_assert_uint_le(HOT_AFTER + hot_windows_max(), TAKER_MAX);
    mpscq_t *q = hot_queue(HOT_AFTER + hot_windows_max() + extra);
    hot_setup(1);
    taker_hot(q);
    hot_in_window = take_one_in_window;
    return q;
}

/* After that call: it stood aside once, for the whole bound and not a
 * ns more (the helper took in every window), and the helper got its
 * messages in order. */
static void hot_kept_taking(void)
{
    unsigned windows = hot_windows_max();
    hot_in_window = NULL;
    ck_assert_uint_eq(windows_seen(), windows);
    ck_assert_uint_eq(ns_seen(), MPSCQ_HOT_WAIT_NS);
    taker_stop();
    ck_assert_uint_eq(taker_bad(), 0);
    for (unsigned i = 0; i < HOT_AFTER + windows; i++)
        ck_assert_ptr_eq(hot_k.got[i], tu_msg(0, i));
}

/* A consumer stands aside while the hot one keeps taking (one take in
 * each of its windows, here), and no longer than MPSCQ_HOT_WAIT_NS in
 * all: it takes the next message after that many windows.  Each
 * consumer gets its messages in order. */
START_TEST(test_hot_keeps_taking_bounded)
{
    mpscq_t *q = hot_keeps_taking(4);
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    hot_kept_taking();
    ck_assert_ptr_eq(m, tu_msg(0, HOT_AFTER + hot_windows_max()));
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* A batch call stands aside once, at its start, not before each
 * message: with the hot consumer taking in each window, a batch of 4
 * waits the bound once and then takes 4 messages in a row. */
START_TEST(test_hot_batch_yields_once)
{
    mpscq_t *q = hot_keeps_taking(4);
    void *b[4];
    ck_assert_uint_eq(mpscq_dequeue_batch(q, b, 4), 4);
    hot_kept_taking();
    for (unsigned i = 0; i < 4; i++)
        ck_assert_ptr_eq(b[i], tu_msg(0, HOT_AFTER + hot_windows_max() + i));
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* A consumer whose takes come MPSCQ_HOT_NS apart on average (exactly
 * the bound: hot means below it) is not hot: nobody waits for it. */
START_TEST(test_slow_consumer_not_hot)
{
    mpscq_t *q = hot_queue(4 * MPSCQ_HOT_TAKES + 1);
    hot_setup(MPSCQ_HOT_TAKES * MPSCQ_HOT_NS); /* one reading per measurement */
    taker_start(q);
    taker_take(&hot_k, 4 * MPSCQ_HOT_TAKES);
    ck_assert_uint_eq(taker_bad(), 0);
    ck_assert_uint_eq(chot_of(q), 0);
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(0, 4 * MPSCQ_HOT_TAKES));
    ck_assert_uint_eq(windows_seen(), 0);
    taker_stop(); /* joined: its calls happen before the destroy */
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* A hot consumer that slows down is hot no more at its next
 * measurement, and clears its word: the next consumer does not wait. */
START_TEST(test_hot_slows_down)
{
    mpscq_t *q = hot_queue(HOT_AFTER + MPSCQ_HOT_TAKES + 1);
    hot_setup(1);
    taker_hot(q);
    atomic_store(&hot_step, 2 * MPSCQ_HOT_TAKES * MPSCQ_HOT_NS);
    taker_take(&hot_k, MPSCQ_HOT_TAKES);
    ck_assert_uint_eq(taker_bad(), 0);
    ck_assert_uint_eq(chot_of(q), 0);
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(0, HOT_AFTER + MPSCQ_HOT_TAKES));
    ck_assert_uint_eq(windows_seen(), 0);
    taker_stop(); /* joined: its calls happen before the destroy */
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* A hot consumer that finds the queue empty is hot no more: the next
 * consumer does not wait. */
START_TEST(test_hot_cools_on_empty)
{
    mpscq_t *q = hot_queue(HOT_AFTER);
    hot_setup(1);
    taker_hot(q);
    atomic_store(&hot_k.expect, MPSCQ_EMPTY);
    taker_take(&hot_k, 1);
    ck_assert_uint_eq(taker_bad(), 0);
    ck_assert_uint_eq(chot_of(q), 0);
    ck_assert_int_eq(mpscq_enqueue(q, tu_msg(0, HOT_AFTER)), MPSCQ_OK);
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(0, HOT_AFTER));
    ck_assert_uint_eq(windows_seen(), 0);
    taker_stop(); /* joined: its calls happen before the destroy */
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* A consumer that stands aside is hot no more itself (its takes are
 * not in a row): this thread, hot first, stands aside for the helper
 * (hot after it), then takes without writing the word. */
START_TEST(test_yield_cools_own)
{
    mpscq_t *q = hot_queue(3 * HOT_AFTER);
    hot_setup(1);
    void *m;
    for (unsigned i = 0; i < HOT_AFTER; i++)
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_uint_ne(chot_of(q), 0); /* this thread's word */
    uint64_t mine = chot_of(q);
    taker_hot(q); /* its first call stood aside for this thread, once */
    ck_assert_uint_ne(chot_of(q), mine);
    atomic_store(&yield_windows, 0);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK); /* stands aside one window */
    ck_assert_ptr_eq(m, tu_msg(0, 2 * HOT_AFTER));
    ck_assert_uint_eq(windows_seen(), 1);
    ck_assert_uint_eq(chot_of(q), 0);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_uint_eq(chot_of(q), 0); /* not hot: no word */
    taker_stop(); /* joined: its calls happen before the destroy */
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* A thread's cursor taken over for another queue starts a new
 * measurement: hot on q, this thread then uses four other queues (the
 * fourth takes q's cursor, the least recently used); its first take
 * there writes no word. */
START_TEST(test_fresh_cursor_not_hot)
{
    mpscq_t *q = hot_queue(HOT_AFTER);
    hot_setup(1);
    void *m;
    for (unsigned i = 0; i < HOT_AFTER; i++)
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_uint_ne(chot_of(q), 0);
    mpscq_t *o[4];
    for (unsigned i = 0; i < 4; i++) {
        o[i] = hot_queue(1);
        ck_assert_int_eq(mpscq_dequeue(o[i], &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, tu_msg(0, 0));
        ck_assert_uint_eq(chot_of(o[i]), 0);
    }
    for (unsigned i = 0; i < 4; i++)
        mpscq_destroy(o[i], NULL, NULL);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

static Suite *consumers_suite(void)
{
    Suite *s = suite_create("consumers");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 240);
    tcase_add_checked_fixture(tc, NULL, hot_teardown);
    tcase_add_test(tc, test_contract);
    tcase_add_test(tc, test_destroy_drops);
    tcase_add_test(tc, test_exact_16p4c);
    tcase_add_test(tc, test_exact_16p4c_bounded);
    tcase_add_test(tc, test_exact_2p8c_tiny);
    tcase_add_test(tc, test_exact_preempted);
    tcase_add_test(tc, test_stalled_producer);
    tcase_add_test(tc, test_stalled_consumer);
    tcase_add_test(tc, test_order_after_pass);
    tcase_add_test(tc, test_order_after_pass_stale_limit);
    tcase_add_test(tc, test_contention_warning);
    tcase_add_test(tc, test_wake_one_close_all);
    tcase_add_test(tc, test_baton);
    tcase_add_test(tc, test_no_lost_wakeup);
    tcase_add_test(tc, test_signal_keeps_waiting);
    tcase_add_test(tc, test_woken_loses_its_message);
    tcase_add_test(tc, test_close_with_holes_wakes_all);
    tcase_add_test(tc, test_closed_drained_wakes_sleepers);
    tcase_add_test(tc, test_destroy_drops_lagging);
    tcase_add_test(tc, test_consumer_nomem);
    tcase_add_test(tc, test_bounded_strict);
    tcase_add_test(tc, test_backpressure_close_drain);
    tcase_add_test(tc, test_memory_back);
    tcase_add_test(tc, test_pool_takes_backlog);
    tcase_add_test(tc, test_pool_eases_behind_unwritten_ticket);
    tcase_add_test(tc, test_stalled_recycler);
    tcase_add_test(tc, test_scan_across_recycling);
    tcase_add_test(tc, test_interior_after_stopped_head);
    tcase_add_test(tc, test_busy_from_callbacks);
    tcase_add_test(tc, test_batch_wait_ends);
    tcase_add_test(tc, test_bounded_exact_across_consumers);
    tcase_add_test(tc, test_cursor_stalled_producer);
    tcase_add_test(tc, test_cursor_stalled_batch);
    tcase_add_test(tc, test_cursor_full);
    tcase_add_test(tc, test_cursor_per_queue);
    tcase_add_test(tc, test_hole_front_interior);
    tcase_add_test(tc, test_stats_record_linking);
    tcase_add_test(tc, test_close_gap);
    tcase_add_test(tc, test_baton_reads_from_cursor);
    tcase_add_test(tc, test_hot_stopped_one_window);
    tcase_add_test(tc, test_hot_keeps_taking_bounded);
    tcase_add_test(tc, test_hot_batch_yields_once);
    tcase_add_test(tc, test_slow_consumer_not_hot);
    tcase_add_test(tc, test_hot_slows_down);
    tcase_add_test(tc, test_hot_cools_on_empty);
    tcase_add_test(tc, test_yield_cools_own);
    tcase_add_test(tc, test_fresh_cursor_not_hot);
    suite_add_tcase(s, tc);
#ifdef MPSCQ_HAVE_ASM
    tc = tcase_create("asm");
    tcase_set_timeout(tc, 240);
    /* Through the NASM entries, whose consumer check fails on a
     * many-consumer queue and hands over to C. */
    tcase_add_checked_fixture(tc, tu_use_asm, tu_use_c);
    tcase_add_test(tc, test_contract);
    tcase_add_test(tc, test_exact_16p4c);
    tcase_add_test(tc, test_stalled_consumer);
    tcase_add_test(tc, test_bounded_strict);
    tcase_add_test(tc, test_busy_from_callbacks);
    suite_add_tcase(s, tc);
#endif
    return s;
}

int main(void)
{
    return tu_run("consumers", consumers_suite());
}
