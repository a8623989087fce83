/* check_records.c - hazard records, thread slots, the segment pool's
 * reclamation and fork(), with the test library's hooks
 * (libmpscq_test.la).  Each test forces one interleaving that an earlier
 * version got wrong (doc/design.md s. 4, 5 and 13). */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "internal.h"
#include "hazard.h"
#include "segment.h"

/* ---- an allocator that notices a segment freed while watched ------- */

static _Atomic(void *) watched;      /* the segment a stopped popper names */
static _Atomic int watch_on;         /* the popper is stopped right now */
static _Atomic int watched_freed;    /* freed while watch_on */
static _Atomic long long wa_outstanding;
static _Atomic int reenter_on;       /* free_fn creates and destroys a queue */
static _Atomic int reentered;

static void *wa_alloc(size_t size, void *arg)
{
    (void)arg;
    void *p = NULL;
    if (posix_memalign(&p, 64, size) != 0)
        return NULL;
    atomic_fetch_add(&wa_outstanding, (long long)size);
    return p;
}

static void wa_free(void *p, size_t size, void *arg)
{
    (void)arg;
    if (atomic_load(&watch_on) && p == atomic_load(&watched))
        atomic_store(&watched_freed, 1);
    if (atomic_load(&reenter_on)) {
        /* A callback that uses the library itself (it may: no lock of
         * the library is held when it runs). */
        mpscq_t *other;
        ck_assert_int_eq(mpscq_create(&other, NULL), MPSCQ_OK);
        mpscq_destroy(other, NULL, NULL);
        atomic_fetch_add(&reentered, 1);
    }
    atomic_fetch_sub(&wa_outstanding, (long long)size);
    free(p);
}

static mpscq_t *make_watched(size_t slots)
{
    mpscq_config c;
    mpscq_config_init(&c);
    c.segment_slots = slots;
    c.alloc_fn = wa_alloc;
    c.free_fn = wa_free;
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    return q;
}

/* The consumer's side of refilling the pool: recycle one (fresh,
 * cleared) segment exactly as reclaim does. */
static void pool_add_one(mpscq_t *q)
{
    struct mpscq *m = (struct mpscq *)q;
    struct mpscq_segment *s = mpscq_seg_mem_alloc(m);
    ck_assert_ptr_nonnull(s);
    memset(s, 0, m->seg_bytes);
    /* As mpscq_seg_get declares a fresh segment's atomics (Helgrind). */
    MPSCQ_HG_ATOMIC_VAR(s->next);
    MPSCQ_HG_ATOMIC_VAR(s->pool_next);
    mpscq_seg_hg_states(s, m->nslots);
    mpscq_seg_put(m, s);
}

static size_t pool_count(mpscq_t *q)
{
    return atomic_load(&((struct mpscq *)q)->pool_count);
}

/* ---- 1. a popper's hazard outlives another thread's exit ------------ */

static _Thread_local int stop_me;
static _Atomic int stopped, go_on;

static void pop_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    if (where != MPSCQ_HOOK_POOL_POP || !stop_me)
        return;
    stop_me = 0;
    atomic_store(&watched, (void *)(uintptr_t)t);
    atomic_store(&watch_on, 1);
    atomic_store(&stopped, 1);
    while (!atomic_load(&go_on))
        sched_yield();
    atomic_store(&watch_on, 0);
}

static void *popper(void *p)
{
    stop_me = 1;
    ck_assert_int_eq(mpscq_enqueue((mpscq_t *)p, tu_msg(1, 0)), MPSCQ_OK);
    return NULL;
}

static _Atomic int b_enqueued, b_may_exit;

static void *spare_taker(void *p)
{
    ck_assert_int_eq(mpscq_enqueue((mpscq_t *)p, tu_msg(2, 0)), MPSCQ_OK);
    atomic_store(&b_enqueued, 1);
    while (!atomic_load(&b_may_exit))
        sched_yield();
    return NULL; /* thread exit: the record's spare goes back */
}

START_TEST(test_pool_hazard_survives_thread_exit)
{
    /* V reads the pool's top A and names it in its hazard; B pops A as its
     * spare; the pool is refilled to its bound; B exits.  A must not be
     * freed while V still names it (V reads A->pool_next next). */
    mpscq_t *q = make_watched(2);
    void *m;
    ck_assert_int_eq(mpscq_enqueue(q, tu_msg(0, 0)), MPSCQ_OK);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    while (pool_count(q) < MPSCQ_POOL_MAX)
        pool_add_one(q);
    atomic_store(&stopped, 0);
    atomic_store(&go_on, 0);
    atomic_store(&watched_freed, 0);
    atomic_store(&b_enqueued, 0);
    atomic_store(&b_may_exit, 0);
    mpscq_test_hook = pop_hook;
    pthread_t v, b;
    ck_assert_int_eq(pthread_create(&v, NULL, popper, q), 0);
    while (!atomic_load(&stopped))
        sched_yield();
    void *a = atomic_load(&watched);
    ck_assert_ptr_eq(a, atomic_load(&((struct mpscq *)q)->pool.ptr));
    ck_assert_int_eq(pthread_create(&b, NULL, spare_taker, q), 0);
    while (!atomic_load(&b_enqueued))
        sched_yield();
    /* B holds A as its spare: the pool is one short; the consumer fills
     * it up again, then B exits. */
    ck_assert_ptr_ne(atomic_load(&((struct mpscq *)q)->pool.ptr), a);
    while (pool_count(q) < MPSCQ_POOL_MAX)
        pool_add_one(q);
    atomic_store(&b_may_exit, 1);
    pthread_join(b, NULL);
    ck_assert_msg(!atomic_load(&watched_freed), "segment freed while a popper's hazard names it");
    /* The consumer's trim of the over-full pool must not free it either. */
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(2, 0));
    tu_idle(q); /* the queue is idle: the pool is trimmed */
    ck_assert_msg(!atomic_load(&watched_freed), "pool trim freed a segment a popper names");
    ck_assert_uint_gt(pool_count(q), MPSCQ_POOL_MAX); /* it stopped at the protected top */
    atomic_store(&go_on, 1);
    pthread_join(v, NULL);
    mpscq_test_hook = NULL;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(1, 0));
    /* With the hazard gone, the pool is trimmed back to its bound. */
    tu_idle(q);
    ck_assert_uint_le(pool_count(q), MPSCQ_POOL_MAX);
    mpscq_destroy(q, NULL, NULL);
    ck_assert_int_eq(atomic_load(&wa_outstanding), 0);
}
END_TEST

/* ---- 2. no enqueue waits for the registry lock ---------------------- */

static _Atomic int reg_stop, reg_held, reg_go;

static void registry_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    (void)t;
    if (where == MPSCQ_HOOK_REGISTRY_LOCKED && atomic_exchange(&reg_stop, 0)) {
        atomic_store(&reg_held, 1);
        while (!atomic_load(&reg_go))
            sched_yield();
    }
}

static void *creator(void *p)
{
    mpscq_t **out = p;
    ck_assert_int_eq(mpscq_create(out, NULL), MPSCQ_OK);
    return NULL;
}

#define NQ 24
struct rr {
    mpscq_t **qs;
    unsigned rounds;
    _Atomic int done;
};

static void *round_robin(void *p)
{
    struct rr *a = p;
    for (unsigned r = 0; r < a->rounds; r++)
        for (unsigned i = 0; i < NQ; i++)
            ck_assert_int_eq(mpscq_enqueue(a->qs[i], tu_msg(0, r)), MPSCQ_OK);
    atomic_store(&a->done, 1);
    return NULL; /* thread exit takes the lock: that is not an enqueue */
}

START_TEST(test_enqueue_never_takes_registry_lock)
{
    /* A thread stopped inside mpscq_create holds the registry lock.
     * Another enqueues round-robin over 24 queues (more than any per-
     * thread cache) for its first time on each and again: it must finish
     * while the lock is held.  (It used to evict a cache entry under that
     * lock on every enqueue past the 8th queue, and hang here.) */
    mpscq_t *qs[NQ];
    for (unsigned i = 0; i < NQ; i++)
        ck_assert_int_eq(mpscq_create(&qs[i], NULL), MPSCQ_OK);
    atomic_store(&reg_held, 0);
    atomic_store(&reg_go, 0);
    atomic_store(&reg_stop, 1);
    mpscq_test_hook = registry_hook;
    mpscq_t *late = NULL;
    pthread_t h, t;
    ck_assert_int_eq(pthread_create(&h, NULL, creator, &late), 0);
    while (!atomic_load(&reg_held))
        sched_yield();
    struct rr a = { qs, 3, 0 };
    ck_assert_int_eq(pthread_create(&t, NULL, round_robin, &a), 0);
    while (!atomic_load(&a.done)) /* hangs if an enqueue waits for the lock */
        sched_yield();
    atomic_store(&reg_go, 1);
    pthread_join(h, NULL);
    pthread_join(t, NULL);
    mpscq_test_hook = NULL;
    for (unsigned i = 0; i < NQ; i++) {
        void *m;
        for (unsigned r = 0; r < 3; r++) {
            ck_assert_int_eq(mpscq_dequeue(qs[i], &m), MPSCQ_OK);
            ck_assert_ptr_eq(m, tu_msg(0, r));
        }
        ck_assert_int_eq(mpscq_dequeue(qs[i], &m), MPSCQ_EMPTY);
        mpscq_destroy(qs[i], NULL, NULL);
    }
    mpscq_destroy(late, NULL, NULL);
}
END_TEST

static void *enqueue_then_exit(void *p)
{
    mpscq_t **qs = p;
    for (unsigned i = 0; i < NQ; i++)
        ck_assert_int_eq(mpscq_enqueue(qs[i], tu_msg(0, i)), MPSCQ_OK);
    return NULL;
}

static _Atomic int t_enqueued, t_may_exit;

static void *enqueue_wait_exit(void *p)
{
    mpscq_t **qs = p;
    for (unsigned i = 0; i < NQ; i++)
        ck_assert_int_eq(mpscq_enqueue(qs[i], tu_msg(0, i)), MPSCQ_OK);
    atomic_store(&t_enqueued, 1);
    while (!atomic_load(&t_may_exit))
        sched_yield();
    return NULL;
}

START_TEST(test_callbacks_run_under_no_lock)
{
    /* free_fn creates and destroys a queue (taking the registry lock).
     * Threads that used 24 queues exit with their spares while every pool
     * is full: if any of that ran free_fn under the registry lock, the
     * thread would deadlock in its own exit. */
    mpscq_t *qs[NQ];
    for (unsigned i = 0; i < NQ; i++)
        qs[i] = make_watched(4);
    atomic_store(&reentered, 0);
    for (int round = 0; round < 3; round++) {
        atomic_store(&t_enqueued, 0);
        atomic_store(&t_may_exit, 0);
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, enqueue_wait_exit, qs), 0);
        while (!atomic_load(&t_enqueued))
            sched_yield();
        /* Every pool full while the thread holds spares in every queue. */
        for (unsigned i = 0; i < NQ; i++)
            while (pool_count(qs[i]) < MPSCQ_POOL_MAX)
                pool_add_one(qs[i]);
        atomic_store(&reenter_on, 1);
        atomic_store(&t_may_exit, 1);
        pthread_join(t, NULL);
        for (unsigned i = 0; i < NQ; i++) {
            void *m;
            ck_assert_int_eq(mpscq_dequeue(qs[i], &m), MPSCQ_OK);
            ck_assert_ptr_eq(m, tu_msg(0, i));
            tu_idle(qs[i]);
            /* The consumer trimmed what the exits gave back. */
            ck_assert_uint_le(pool_count(qs[i]), MPSCQ_POOL_MAX);
        }
        atomic_store(&reenter_on, 0);
    }
    /* free_fn did run (from the consumer's trim), and re-entered. */
    ck_assert_int_gt(atomic_load(&reentered), 0);
    for (unsigned i = 0; i < NQ; i++)
        mpscq_destroy(qs[i], NULL, NULL);
    ck_assert_int_eq(atomic_load(&wa_outstanding), 0);
}
END_TEST

START_TEST(test_many_threads_reuse_slots)
{
    /* 64 short-lived threads, four at a time, over 24 queues: thread slots
     * and records are reused, not grown per thread. */
    mpscq_t *qs[NQ];
    for (unsigned i = 0; i < NQ; i++)
        qs[i] = make_watched(4);
    unsigned threads = (unsigned)tu_scaled(64, 8);
    for (unsigned k = 0; k < threads; k += 4) {
        pthread_t t[4];
        for (int j = 0; j < 4; j++)
            ck_assert_int_eq(pthread_create(&t[j], NULL, enqueue_then_exit, qs), 0);
        for (int j = 0; j < 4; j++)
            pthread_join(t[j], NULL);
    }
    size_t records = 0;
    struct mpscq_hp_rec *r = atomic_load(&((struct mpscq *)qs[0])->records);
    for (; r; r = atomic_load(&r->next))
        records++;
    /* At most four threads held a slot at once (plus this one). */
    ck_assert_uint_le(records, 5);
    for (unsigned i = 0; i < NQ; i++) {
        void *m;
        for (unsigned k = 0; k < threads; k++)
            ck_assert_int_eq(mpscq_dequeue(qs[i], &m), MPSCQ_OK);
        ck_assert_int_eq(mpscq_dequeue(qs[i], &m), MPSCQ_EMPTY);
        mpscq_destroy(qs[i], NULL, NULL);
    }
    ck_assert_int_eq(atomic_load(&wa_outstanding), 0);
}
END_TEST

/* ---- 5. a failed batch gives back, staying wait-free --------------- */

static _Atomic long budget; /* allocations left; < 0: unlimited */

static void *budget_alloc(size_t size, void *arg)
{
    if (atomic_load(&budget) >= 0 && atomic_fetch_sub(&budget, 1) <= 0)
        return NULL;
    return wa_alloc(size, arg);
}

START_TEST(test_failed_batch_give_back_bounded)
{
    /* A batch fails for want of memory after taking 4 pooled and 10 fresh
     * segments.  The fresh ones go back to free_fn; the pooled ones back
     * to the pool, but with at most two CAS attempts each (an enqueue is
     * wait-free): when the pool's CAS keeps failing they stay the
     * thread's spares, still linked, and are used later. */
    mpscq_config c;
    mpscq_config_init(&c);
    c.segment_slots = 2;
    c.alloc_fn = budget_alloc;
    c.free_fn = wa_free;
    atomic_store(&budget, -1);
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    void *m, *one[1] = { tu_msg(0, 0) };
    ck_assert_int_eq(mpscq_enqueue(q, one[0]), MPSCQ_OK);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    struct mpscq_hp_rec *r = mpscq_tls.rec;
    size_t spares = r->nspare;
    while (pool_count(q) < MPSCQ_POOL_MAX)
        pool_add_one(q);
    long long before = atomic_load(&wa_outstanding);
    atomic_store(&budget, 10);
    atomic_store(&mpscq_test_cas_failures, 1000);
    ck_assert_int_eq(mpscq_enqueue_batch(q, one, 1000), MPSCQ_NOMEM);
    ck_assert_int_gt(atomic_load(&mpscq_test_cas_failures), 0);
    atomic_store(&mpscq_test_cas_failures, 0);
    /* The ten fresh ones are freed; the four pooled ones kept. */
    ck_assert_uint_eq(r->nspare, spares + MPSCQ_POOL_MAX);
    ck_assert_int_eq(atomic_load(&wa_outstanding), before);
    size_t n = 0;
    for (struct mpscq_segment *x = r->spare; x; x = atomic_load(&x->pool_next))
        n++;
    ck_assert_uint_eq(n, r->nspare);
    /* Without contention the same failure hands them to the pool. */
    atomic_store(&budget, 10);
    ck_assert_int_eq(mpscq_enqueue_batch(q, one, 1000), MPSCQ_NOMEM);
    ck_assert_uint_le(r->nspare, 1);
    atomic_store(&budget, -1);
    void *msgs[9];
    for (unsigned i = 0; i < 9; i++)
        msgs[i] = tu_msg(1, i);
    ck_assert_int_eq(mpscq_enqueue_batch(q, msgs, 9), MPSCQ_OK);
    for (unsigned i = 0; i < 9; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, msgs[i]);
    }
    mpscq_destroy(q, NULL, NULL);
    ck_assert_int_eq(atomic_load(&wa_outstanding), 0);
}
END_TEST

/* ---- 7. pthread_key_create failing clobbers nobody's key ------------ */

extern _Atomic int mpscq_test_fail_key_create;
void mpscq_test_rerun_key_create(void);

static void *keys_then_enqueue(void *p)
{
    pthread_key_t *keys = p;
    static int marks[8];
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(pthread_setspecific(keys[i], &marks[i]), 0);
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, NULL), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(q, tu_msg(0, 1)), MPSCQ_OK);
    for (int i = 0; i < 8; i++)
        ck_assert_ptr_eq(pthread_getspecific(keys[i]), &marks[i]);
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(0, 1));
    mpscq_destroy(q, NULL, NULL);
    return NULL;
}

START_TEST(test_key_create_failure)
{
    /* Without its thread-exit key the library still works (a thread's slot
     * is then not given back at exit) and touches no other key. */
    atomic_store(&mpscq_test_fail_key_create, 1);
    mpscq_test_rerun_key_create();
    pthread_key_t keys[8];
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(pthread_key_create(&keys[i], NULL), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, keys_then_enqueue, keys), 0);
    pthread_join(t, NULL);
    for (int i = 0; i < 8; i++)
        pthread_key_delete(keys[i]);
    atomic_store(&mpscq_test_fail_key_create, 0);
    mpscq_test_rerun_key_create();
}
END_TEST

/* ---- 7. fork() -------------------------------------------------------- */

static int fork_ok(void)
{
    /* Not under Valgrind, nor where the suites run unforked (qemu-user,
     * TSan: a forked multi-threaded emulated process may hang). */
    const char *f = getenv("CK_FORK");
    return !tu_under_valgrind() && !(f && strcmp(f, "no") == 0);
}

static _Atomic int fork_prepared, forked;

static void fork_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    (void)t;
    if (where == MPSCQ_HOOK_REGISTRY_LOCKED && atomic_exchange(&reg_stop, 0)) {
        atomic_store(&reg_held, 1);
        /* Hold the lock across the fork, unless fork() itself waits for
         * it (its prepare handler is about to take it). */
        while (!atomic_load(&fork_prepared) && !atomic_load(&forked))
            sched_yield();
    } else if (where == MPSCQ_HOOK_FORK_PREPARE) {
        atomic_store(&fork_prepared, 1);
    }
}

/* Wait for the child and check that it exited with status 0. */
static void child_ok(pid_t pid)
{
    ck_assert_int_gt(pid, 0);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}

/* The child's whole life: make a queue, use it, destroy it. */
static int child_uses_new_queue(void)
{
    mpscq_t *q;
    if (mpscq_create(&q, NULL) != MPSCQ_OK)
        return 1;
    void *m = NULL;
    if (mpscq_enqueue(q, tu_msg(5, 5)) != MPSCQ_OK || mpscq_dequeue(q, &m) != MPSCQ_OK ||
        m != tu_msg(5, 5))
        return 2;
    mpscq_destroy(q, NULL, NULL);
    return 0;
}

START_TEST(test_fork_while_registry_locked)
{
    if (!fork_ok())
        return;
    atomic_store(&reg_held, 0);
    atomic_store(&fork_prepared, 0);
    atomic_store(&forked, 0);
    atomic_store(&reg_stop, 1);
    mpscq_test_hook = fork_hook;
    mpscq_t *late = NULL;
    pthread_t h;
    ck_assert_int_eq(pthread_create(&h, NULL, creator, &late), 0);
    while (!atomic_load(&reg_held))
        sched_yield();
    pid_t pid = fork();
    if (pid == 0) {
        mpscq_test_hook = NULL;
        _exit(child_uses_new_queue()); /* hangs if the lock came along held */
    }
    atomic_store(&forked, 1);
    pthread_join(h, NULL);
    mpscq_test_hook = NULL;
    child_ok(pid);
    mpscq_destroy(late, NULL, NULL);
}
END_TEST

static _Atomic int tk_stopped, tk_go;
static _Thread_local int tk_stop_me;

static void ticket_hook(int where, const struct mpscq *q, uint64_t t)
{
    (void)q;
    (void)t;
    if (where != MPSCQ_HOOK_AFTER_TICKET || !tk_stop_me)
        return;
    tk_stop_me = 0;
    atomic_store(&tk_stopped, 1);
    while (!atomic_load(&tk_go))
        sched_yield();
}

static void *stopped_after_ticket(void *p)
{
    tk_stop_me = 1;
    ck_assert_int_eq(mpscq_enqueue((mpscq_t *)p, tu_msg(9, 0)), MPSCQ_OK);
    return NULL;
}

static _Atomic int dropped;
static void count_drop(void *m, void *arg)
{
    (void)m;
    (void)arg;
    atomic_fetch_add(&dropped, 1);
}

START_TEST(test_fork_child_destroys_inherited_queue)
{
    /* A parent's thread is stopped between its ticket and its write when
     * the process forks.  The child can destroy the inherited queue (every
     * written message is handed to drop; the hole is skipped), then make
     * and use queues of its own; the parent goes on as if nothing
     * happened. */
    if (!fork_ok())
        return;
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, NULL), MPSCQ_OK);
    for (unsigned i = 0; i < 10; i++)
        ck_assert_int_eq(mpscq_enqueue(q, tu_msg(0, i)), MPSCQ_OK);
    atomic_store(&tk_stopped, 0);
    atomic_store(&tk_go, 0);
    mpscq_test_hook = ticket_hook;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, stopped_after_ticket, q), 0);
    while (!atomic_load(&tk_stopped))
        sched_yield();
    for (unsigned i = 10; i < 20; i++)
        ck_assert_int_eq(mpscq_enqueue(q, tu_msg(0, i)), MPSCQ_OK);
    pid_t pid = fork();
    if (pid == 0) {
        mpscq_test_hook = NULL;
        atomic_store(&dropped, 0);
        mpscq_destroy(q, count_drop, NULL);
        if (atomic_load(&dropped) != 20)
            _exit(10);
        _exit(child_uses_new_queue());
    }
    child_ok(pid);
    atomic_store(&tk_go, 1);
    pthread_join(t, NULL);
    mpscq_test_hook = NULL;
    void *m;
    for (unsigned i = 0; i < 10; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, tu_msg(0, i));
    }
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, tu_msg(9, 0));
    for (unsigned i = 10; i < 20; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, tu_msg(0, i));
    }
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

START_TEST(test_fork_child_uses_quiescent_queue)
{
    /* No thread is inside a call on q at the fork: the child's copy is an
     * ordinary queue, which its one thread may produce to and consume. */
    if (!fork_ok())
        return;
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, NULL), MPSCQ_OK);
    pthread_t t;
    static mpscq_t *one[NQ];
    for (unsigned i = 0; i < NQ; i++)
        one[i] = q;
    ck_assert_int_eq(pthread_create(&t, NULL, enqueue_then_exit, one), 0);
    pthread_join(t, NULL);
    pid_t pid = fork();
    if (pid == 0) {
        void *m;
        for (unsigned i = 0; i < NQ; i++)
            if (mpscq_dequeue(q, &m) != MPSCQ_OK || m != tu_msg(0, i))
                _exit(1);
        for (unsigned i = 0; i < 3000; i++)
            if (mpscq_enqueue(q, tu_msg(1, i)) != MPSCQ_OK)
                _exit(2);
        for (unsigned i = 0; i < 3000; i++)
            if (mpscq_dequeue(q, &m) != MPSCQ_OK || m != tu_msg(1, i))
                _exit(3);
        mpscq_close(q);
        if (mpscq_dequeue(q, &m) != MPSCQ_CLOSED)
            _exit(4);
        mpscq_destroy(q, NULL, NULL);
        _exit(0);
    }
    child_ok(pid);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("records");
    TCase *tc = tcase_create("records");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_pool_hazard_survives_thread_exit);
    tcase_add_test(tc, test_enqueue_never_takes_registry_lock);
    tcase_add_test(tc, test_callbacks_run_under_no_lock);
    tcase_add_test(tc, test_many_threads_reuse_slots);
    tcase_add_test(tc, test_failed_batch_give_back_bounded);
    tcase_add_test(tc, test_key_create_failure);
    tcase_add_test(tc, test_fork_while_registry_locked);
    tcase_add_test(tc, test_fork_child_destroys_inherited_queue);
    tcase_add_test(tc, test_fork_child_uses_quiescent_queue);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run("records", suite());
}
