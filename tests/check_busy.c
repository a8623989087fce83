/* check_busy.c - MPSCQ_BUSY: a consumer call while another thread is
 * inside one (issue 11, point 5; design.md s. 8.1).  The interleavings
 * that matter are made with the test hooks: a consumer stopped between
 * its mark and its check, a taker stopped between its name and its look
 * at the old consumer's mark, a consumer stopped inside the slow path or
 * asleep. */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#include "testutil.h"
#include "internal.h"
#include "arch.h"
#include "dispatch.h"

/* ---- stopping one thread at one hook -------------------------------- */

static _Atomic int stop_where = -1;  /* the hook to stop at */
static _Thread_local int stop_me;     /* this thread stops there, once */
static _Atomic int stopped;           /* it is there */
static _Atomic int go;                /* let it on */

static void stop_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    (void)t;
    if (!stop_me || where != atomic_load(&stop_where))
        return;
    stop_me = 0;
    atomic_store(&stopped, 1);
    while (!atomic_load(&go))
        sched_yield();
}

static void stop_arm(int where)
{
    atomic_store(&stopped, 0);
    atomic_store(&go, 0);
    atomic_store(&stop_where, where);
    mpscq_test_hook = stop_hook;
}

static void stop_wait(void)
{
    while (!atomic_load(&stopped))
        sched_yield();
}

static void stop_release(void)
{
    atomic_store(&go, 1);
}

static void stop_disarm(void)
{
    mpscq_test_hook = NULL;
    atomic_store(&stop_where, -1);
}

/* A queue; fenced: as on a system without membarrier (the consumer's
 * check then always takes the slow half, with its fence). */
static mpscq_t *make(int fenced)
{
    mpscq_t *q = NULL;
    ck_assert_int_eq(mpscq_create(&q, NULL), MPSCQ_OK);
    if (fenced)
        q->need_fence = 1;
    return q;
}

static unsigned long long busy_count(mpscq_t *q)
{
    struct mpscq_stats st;
    mpscq_stats(q, &st);
    return st.consumer_busy;
}

/* Every consumer call from this thread is refused and changes nothing:
 * the size stays, *msg and *n as documented. */
static void assert_all_busy(mpscq_t *q)
{
    size_t size = mpscq_size(q);
    unsigned long long before = busy_count(q);
    void *m = (void *)0x5a;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_BUSY);
    ck_assert_ptr_eq(m, (void *)0x5a);
    ck_assert_int_eq(mpscq_dequeue_wait(q, &m, 0), MPSCQ_BUSY);
    ck_assert_int_eq(mpscq_dequeue_wait(q, &m, 1000000), MPSCQ_BUSY);
    ck_assert_ptr_eq(m, (void *)0x5a);
    void *b[4];
    size_t n = 99;
    ck_assert_int_eq(mpscq_dequeue_batch_wait(q, b, 4, &n, -1), MPSCQ_BUSY);
    ck_assert_uint_eq(n, 0);
    ck_assert_uint_eq(mpscq_dequeue_batch(q, b, 4), 0);
    ck_assert_int_eq(mpscq_peek(q, &m), MPSCQ_BUSY);
    ck_assert_ptr_eq(m, (void *)0x5a);
    ck_assert_uint_eq(mpscq_size(q), size);
    ck_assert_uint_eq(busy_count(q), before + 6);
}

/* ---- a consumer asleep in mpscq_dequeue_wait ------------------------- */

struct sleeper {
    mpscq_t *q;
    int rc;
    void *m;
};

static void *sleeper_main(void *p)
{
    struct sleeper *s = p;
    stop_me = 0;
    s->rc = mpscq_dequeue_wait(s->q, &s->m, -1);
    return NULL;
}

static _Atomic int parks;
static void park_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    (void)t;
    if (where == MPSCQ_HOOK_PARK)
        atomic_fetch_add(&parks, 1);
}

/* A thread asleep in mpscq_dequeue_wait on s->q (its first park seen). */
static pthread_t start_sleeper(struct sleeper *s)
{
    atomic_store(&parks, 0);
    mpscq_test_hook = park_hook;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, sleeper_main, s), 0);
    while (!atomic_load(&parks))
        sched_yield();
    return t;
}

START_TEST(test_busy_while_asleep)
{
    mpscq_t *q = make(_i);
    struct sleeper s = { q, -1, NULL };
    pthread_t t = start_sleeper(&s);
    /* Asleep inside mpscq_dequeue_wait: every consumer call is BUSY, and
     * a producer call is not one. */
    assert_all_busy(q);
    ck_assert_int_eq(mpscq_enqueue(q, (void *)7), MPSCQ_OK);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(s.rc, MPSCQ_OK);
    ck_assert_ptr_eq(s.m, (void *)7);
    /* Its call is over: the role passes to this thread. */
    void *m;
    ck_assert_int_eq(mpscq_enqueue(q, (void *)8), MPSCQ_OK);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)8);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* Close wakes the sleeper, which returns CLOSED; meanwhile BUSY. */
START_TEST(test_busy_then_close)
{
    mpscq_t *q = make(_i);
    struct sleeper s = { q, -1, NULL };
    pthread_t t = start_sleeper(&s);
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_BUSY);
    mpscq_close(q);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(s.rc, MPSCQ_CLOSED);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_CLOSED);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* ---- a consumer stopped inside the slow path ------------------------- */

struct caller {
    mpscq_t *q;
    int op;      /* 0 dequeue, 1 peek, 2 dequeue_batch */
    int rc;
    void *m;
    int where;   /* the hook to stop at, -1 none */
    int warm;    /* make the call once first (rc1, m1): the role is ours */
    int rc1;
    void *m1;
};

static void call(struct caller *c)
{
    if (c->op == 0) {
        c->rc = mpscq_dequeue(c->q, &c->m);
    } else if (c->op == 1) {
        c->rc = mpscq_peek(c->q, &c->m);
    } else {
        size_t n = mpscq_dequeue_batch(c->q, &c->m, 1);
        c->rc = n ? MPSCQ_OK : MPSCQ_EMPTY;
    }
}

static void *caller_main(void *p)
{
    struct caller *c = p;
    if (c->warm) {
        call(c);
        c->rc1 = c->rc;
        c->m1 = c->m;
    }
    stop_me = c->where >= 0;
    call(c);
    stop_me = 0;
    return NULL;
}

static int run_caller(struct caller *c, pthread_t *t)
{
    return pthread_create(t, NULL, caller_main, c);
}

START_TEST(test_busy_inside_slow_path)
{
    mpscq_t *q = make(_i);
    void *m;
    /* This thread is the consumer first; then another one is, stopped in
     * the slow path of a dequeue on the empty queue. */
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    stop_arm(MPSCQ_HOOK_CONSUMER_SCAN);
    struct caller c = { q, 0, -1, NULL, MPSCQ_HOOK_CONSUMER_SCAN, 1, -1, NULL };
    pthread_t t;
    ck_assert_int_eq(run_caller(&c, &t), 0);
    stop_wait();
    assert_all_busy(q);
    for (uintptr_t i = 1; i <= 3; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
    assert_all_busy(q);
    stop_release();
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    stop_disarm();
    /* Nothing lost or repeated: what it took and what is left, in order. */
    uintptr_t next = 1;
    if (c.rc == MPSCQ_OK) {
        ck_assert_ptr_eq(c.m, (void *)next);
        next++;
    } else {
        ck_assert_int_eq(c.rc, MPSCQ_EMPTY);
    }
    for (; next <= 3; next++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)next);
    }
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* ---- the two orders of the check's race ------------------------------ */

/* The consumer has stored its mark and not yet checked the queue's name
 * when another thread tries: that one must see the mark (BUSY), and the
 * consumer goes on.  Without the mark (or the taker's barrier) the taker
 * would take the role while the consumer runs. */
START_TEST(test_mark_before_check)
{
    static const int ops[] = { 1, 2 }; /* the C checks: peek, batch */
    mpscq_t *q = make(_i & 1);
    int op = ops[_i >> 1];
    void *m;
    ck_assert_int_eq(mpscq_enqueue(q, (void *)1), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(q, (void *)2), MPSCQ_OK);
    /* That thread becomes the consumer, then, in its next call, stops
     * between mark and check. */
    stop_arm(MPSCQ_HOOK_CONSUMER_ENTER);
    struct caller c = { q, op, -1, NULL, MPSCQ_HOOK_CONSUMER_ENTER, 1, -1, NULL };
    pthread_t t;
    ck_assert_int_eq(run_caller(&c, &t), 0);
    stop_wait();
    assert_all_busy(q);
    stop_release();
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    stop_disarm();
    ck_assert_int_eq(c.rc1, MPSCQ_OK);
    ck_assert_ptr_eq(c.m1, (void *)1);
    /* It stayed the consumer: its call went through. */
    ck_assert_int_eq(c.rc, MPSCQ_OK);
    ck_assert_ptr_eq(c.m, (void *)(uintptr_t)(op == 1 ? 1 : 2));
    /* Now it is out: the role passes (with the peeked message first). */
    if (op == 1) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)1);
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)2);
    }
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* A taker has named itself and not yet looked at the old consumer's
 * mark when the old consumer calls: the old consumer must see the new
 * name (BUSY) rather than run beside the taker, and the taker then
 * becomes the consumer. */
START_TEST(test_name_before_look)
{
    mpscq_t *q = make(_i);
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY); /* this thread's role */
    ck_assert_int_eq(mpscq_enqueue(q, (void *)1), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(q, (void *)2), MPSCQ_OK);
    stop_arm(MPSCQ_HOOK_CONSUMER_TAKE);
    struct caller c = { q, 0, -1, NULL, MPSCQ_HOOK_CONSUMER_TAKE, 0, -1, NULL };
    pthread_t t;
    ck_assert_int_eq(run_caller(&c, &t), 0);
    stop_wait();
    assert_all_busy(q);
    stop_release();
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    stop_disarm();
    ck_assert_int_eq(c.rc, MPSCQ_OK);
    ck_assert_ptr_eq(c.m, (void *)1);
    /* And back. */
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)2);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* ---- handing the role over between calls ------------------------------ */

struct relay {
    mpscq_t *q;
    uintptr_t *next;
    int busy;
};

static void *relay_main(void *p)
{
    struct relay *r = p;
    void *m;
    for (int k = 0; k < 5; k++) {
        int rc = mpscq_dequeue(r->q, &m);
        if (rc == MPSCQ_BUSY)
            r->busy++;
        ck_assert_int_eq(rc, MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)(*r->next)++);
    }
    return NULL;
}

START_TEST(test_handoff_is_legal)
{
    mpscq_t *q = make(_i);
    size_t rounds = tu_scaled(200, 10);
    uintptr_t next = 1;
    for (uintptr_t i = 1; i <= rounds * 6; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
    for (size_t r = 0; r < rounds; r++) {
        /* A new thread each round (its slot and mark may be a previous
         * one's), then this one. */
        struct relay rl = { q, &next, 0 };
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, relay_main, &rl), 0);
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        ck_assert_int_eq(rl.busy, 0);
        void *m;
        ck_assert_int_eq(mpscq_peek(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)next);
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)next++);
    }
    ck_assert_uint_eq(busy_count(q), 0);
    ck_assert_uint_eq(mpscq_size(q), 0);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* ---- two threads dequeuing at once, by mistake ------------------------ */

struct rival {
    mpscq_t *q;
    size_t total;
    _Atomic size_t *taken;
    unsigned char *seen;   /* one byte per message */
    unsigned long busy, calls;
    int bad_order;
};

static void *rival_main(void *p)
{
    struct rival *r = p;
    uintptr_t last = 0;
    void *b[8];
    while (atomic_load(r->taken) < r->total) {
        size_t n = 0;
        int rc;
        r->calls++;
        switch (r->calls % 4) {
        case 0:
            rc = mpscq_dequeue_batch_wait(r->q, b, 8, &n, 0);
            break;
        case 1:
            n = mpscq_dequeue_batch(r->q, b, 8);
            rc = MPSCQ_OK;
            break;
        default:
            rc = mpscq_dequeue(r->q, &b[0]);
            n = rc == MPSCQ_OK;
            break;
        }
        if (rc == MPSCQ_BUSY)
            r->busy++;
        if (n == 0)
            sched_yield(); /* let the producer on (Valgrind runs one thread at a time) */
        for (size_t k = 0; k < n; k++) {
            uintptr_t v = (uintptr_t)b[k];
            /* One producer: whoever takes, takes in order. */
            if (v <= last || v > r->total)
                r->bad_order = 1;
            else
                r->seen[v - 1]++;
            last = v;
        }
        atomic_fetch_add(r->taken, n);
    }
    return NULL;
}

START_TEST(test_rival_consumers)
{
    mpscq_t *q = make(_i);
    size_t total = tu_scaled(100000, 2000);
    unsigned char *seen = calloc(total, 1);
    ck_assert_ptr_nonnull(seen);
    _Atomic size_t taken = 0;
    struct rival r[2] = { { q, total, &taken, seen, 0, 0, 0 },
                          { q, total, &taken, seen, 0, 0, 0 } };
    pthread_t t[2];
    for (int k = 0; k < 2; k++)
        ck_assert_int_eq(pthread_create(&t[k], NULL, rival_main, &r[k]), 0);
    /* No ck_assert per message: in Check's no-fork mode (Valgrind) each
     * one is a write(2), and every system call hands the CPU to the two
     * spinning rivals for a whole time slice. */
    size_t refused = 0;
    for (uintptr_t i = 1; i <= total; i++)
        refused += mpscq_enqueue(q, (void *)i) != MPSCQ_OK;
    for (int k = 0; k < 2; k++)
        ck_assert_int_eq(pthread_join(t[k], NULL), 0);
    ck_assert_uint_eq(refused, 0);
    /* Every message exactly once, each thread's share in order. */
    ck_assert_int_eq(r[0].bad_order, 0);
    ck_assert_int_eq(r[1].bad_order, 0);
    ck_assert_uint_eq(atomic_load(&taken), total);
    for (size_t i = 0; i < total; i++)
        ck_assert_msg(seen[i] == 1, "message %zu taken %u times", i + 1, seen[i]);
    /* Each refusal was counted (dequeue_batch's too, which says 0). */
    ck_assert_uint_ge(busy_count(q), r[0].busy + r[1].busy);
    free(seen);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* ---- the exits of the fast path's continuations --------------------- */

struct taker {
    mpscq_t *q;
    int rc;
    void *m;
};

static void *taker_main(void *p)
{
    struct taker *t = p;
    t->rc = mpscq_dequeue(t->q, &t->m);
    return NULL;
}

/* Another thread's dequeue, after this thread's calls are over. */
static void handoff_dequeue(mpscq_t *q, int want_rc, void *want)
{
    struct taker tk = { q, -1, NULL };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, taker_main, &tk), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(tk.rc, want_rc);
    if (want_rc == MPSCQ_OK)
        ck_assert_ptr_eq(tk.m, want);
}

/* A dequeue that takes a segment's last slot leaves the call through the
 * segment-crossing continuation: the role then passes. */
START_TEST(test_crossed_exit)
{
    mpscq_config c;
    mpscq_config_init(&c);
    c.segment_slots = 2;
    mpscq_t *q = NULL;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY); /* the role: ours */
    for (uintptr_t i = 1; i <= 4; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK); /* the last of a segment */
    ck_assert_ptr_eq(m, (void *)2);
    handoff_dequeue(q, MPSCQ_OK, (void *)3);
    ck_assert_uint_eq(busy_count(q), 0);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* A dequeue that finds a producer waiting for a place wakes it and leaves
 * the call through the wake-up continuation: the role then passes. */
static _Atomic int retried;
static void retried_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    (void)t;
    if (where == MPSCQ_HOOK_SPACE_RETRIED)
        atomic_fetch_add(&retried, 1);
}

struct waiter {
    mpscq_t *q;
    int rc;
};

static void *waiter_main(void *p)
{
    struct waiter *w = p;
    w->rc = mpscq_enqueue_wait(w->q, (void *)2, -1);
    return NULL;
}

START_TEST(test_woke_exit)
{
    mpscq_config c;
    mpscq_config_init(&c);
    c.capacity = 1;
    c.segment_slots = 16;
    mpscq_t *q = NULL;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY); /* the role: ours */
    ck_assert_int_eq(mpscq_enqueue(q, (void *)1), MPSCQ_OK);
    atomic_store(&retried, 0);
    mpscq_test_hook = retried_hook;
    struct waiter w = { q, -1 };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, waiter_main, &w), 0);
    while (!atomic_load(&retried)) /* armed, and found the queue full */
        sched_yield();
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK); /* wakes it */
    ck_assert_ptr_eq(m, (void *)1);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(w.rc, MPSCQ_OK);
    handoff_dequeue(q, MPSCQ_OK, (void *)2);
    ck_assert_uint_eq(busy_count(q), 0);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* ---- a user callback inside a consumer call -------------------------- */

static mpscq_t *cb_other;
static _Atomic int cb_armed, cb_fired;
static int cb_nested_rc = -1, cb_enqueue_rc = -1, cb_rival_rc = -1;
static mpscq_t *cb_q;

static void *cb_alloc(size_t n, void *a)
{
    (void)a;
    return aligned_alloc(64, (n + 63) & ~(size_t)63);
}

static void cb_free(void *p, size_t n, void *a)
{
    (void)n;
    (void)a;
    if (atomic_load(&cb_armed) && !atomic_exchange(&cb_fired, 1)) {
        /* Inside a consumer call of cb_q: a consumer call on another
         * queue is refused (one mark per thread), an enqueue is not, and
         * another thread's consumer call on cb_q is refused too (its
         * consumer is inside). */
        void *m;
        cb_nested_rc = mpscq_dequeue(cb_other, &m);
        cb_enqueue_rc = mpscq_enqueue(cb_other, (void *)9);
        struct taker tk = { cb_q, -1, NULL };
        pthread_t t;
        if (pthread_create(&t, NULL, taker_main, &tk) == 0 && pthread_join(t, NULL) == 0)
            cb_rival_rc = tk.rc;
    }
    free(p);
}

START_TEST(test_callback_inside)
{
    mpscq_config c;
    mpscq_config_init(&c);
    c.segment_slots = 2;
    c.alloc_fn = cb_alloc;
    c.free_fn = cb_free;
    atomic_store(&cb_armed, 0);
    atomic_store(&cb_fired, 0);
    cb_nested_rc = cb_enqueue_rc = cb_rival_rc = -1;
    ck_assert_int_eq(mpscq_create(&cb_q, &c), MPSCQ_OK);
    ck_assert_int_eq(mpscq_create(&cb_other, NULL), MPSCQ_OK);
    void *m;
    /* Many segments, drained; the consumer gives the pool back to its
     * idle bound (free_fn) in a dequeue that finds the queue idle. */
    for (int round = 0; round < 8 && !atomic_load(&cb_fired); round++) {
        for (uintptr_t i = 1; i <= 128; i++)
            ck_assert_int_eq(mpscq_enqueue(cb_q, (void *)i), MPSCQ_OK);
        for (uintptr_t i = 1; i <= 128; i++)
            ck_assert_int_eq(mpscq_dequeue(cb_q, &m), MPSCQ_OK);
        atomic_store(&cb_armed, 1);
        ck_assert_int_eq(mpscq_dequeue(cb_q, &m), MPSCQ_EMPTY);
        ck_assert_int_eq(mpscq_dequeue(cb_q, &m), MPSCQ_EMPTY);
    }
    ck_assert_int_eq(atomic_load(&cb_fired), 1);
    ck_assert_int_eq(cb_nested_rc, MPSCQ_BUSY);
    ck_assert_int_eq(cb_enqueue_rc, MPSCQ_OK);
    ck_assert_int_eq(cb_rival_rc, MPSCQ_BUSY);
    /* After the call, this thread is a consumer of either queue again. */
    ck_assert_int_eq(mpscq_dequeue(cb_other, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)9);
    ck_assert_int_eq(mpscq_dequeue(cb_q, &m), MPSCQ_EMPTY);
    atomic_store(&cb_armed, 0);
    mpscq_destroy(cb_q, NULL, NULL);
    mpscq_destroy(cb_other, NULL, NULL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("busy");
    TCase *tc = tcase_create("asleep");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_busy_while_asleep, 0, 2);
    tcase_add_loop_test(tc, test_busy_then_close, 0, 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("inside");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_busy_inside_slow_path, 0, 2);
    tcase_add_loop_test(tc, test_mark_before_check, 0, 4);
    tcase_add_loop_test(tc, test_name_before_look, 0, 2);
    tcase_add_test(tc, test_crossed_exit);
    tcase_add_test(tc, test_woke_exit);
    tcase_add_test(tc, test_callback_inside);
    suite_add_tcase(s, tc);
    tc = tcase_create("threads");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_handoff_is_legal, 0, 2);
    tcase_add_loop_test(tc, test_rival_consumers, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

/* The suite with the C mpscq_dequeue entry, then (x86-64 NASM builds)
 * with the assembly one, through mpscq_impl (arch.h). */
int main(void)
{
    mpscq_impl = &mpscq_impl_base;
    int rc = tu_run("busy (C dequeue)", suite());
#ifdef MPSCQ_HAVE_ASM
    tu_use_asm_dequeue("c11 enqueue, x86_64-nasm dequeue");
    rc |= tu_run("busy (NASM dequeue)", suite());
#endif
    return rc;
}
