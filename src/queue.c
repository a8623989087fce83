/*
 * queue.c - the queue core: public API, enqueue and dequeue slow paths,
 * reclamation, close, and the sleeping consumer.
 *
 * doc/design.md explains the algorithm; comments here give the local
 * reason for each memory order.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "arch.h"
#include "hazard.h"
#include "segment.h"
#include "wait.h"

#ifdef MPSCQ_COUNT_RMW
_Thread_local unsigned long mpscq_rmw_count;
#endif
#ifdef MPSCQ_TEST_HOOKS
void (*mpscq_test_hook)(int where, const struct mpscq *q, uint64_t ticket);
_Atomic long mpscq_test_cas_failures;
_Thread_local unsigned long mpscq_pend_work;
#endif

/* ------------------------------------------------------------------ */
/* Logging and allocation                                               */

void mpscq_log(const struct mpscq *q, int level, const char *msg)
{
    if (q && q->log_fn) {
        q->log_fn(level, msg, q->log_arg);
        return;
    }
    static const char *const names[] = { "debug", "info", "warning", "error" };
    fprintf(stderr, "libmpscq: %s: %s\n",
            level >= 0 && level <= MPSCQ_LOG_ERROR ? names[level] : "log", msg);
}

static void *default_alloc(size_t size, void *arg)
{
    (void)arg;
    void *p = NULL;
    if (posix_memalign(&p, MPSCQ_CACHELINE, size) != 0)
        return NULL;
    return p;
}

static void default_free(void *p, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    free(p);
}

void mpscq_warn_contention(struct mpscq *q, int consumer)
{
    /* Relaxed XCHG: only "who logs" is decided here. */
    if (atomic_exchange_explicit(&q->warned[consumer ? 1 : 0], 1, memory_order_relaxed))
        return;
    mpscq_log(q, MPSCQ_LOG_WARN,
              consumer ? "Dequeue experiencing high contention (1000 CAS failures)"
                       : "Enqueue experiencing high contention (1000 CAS failures)");
}

void *mpscq_alloc(const struct mpscq *q, size_t size)
{
    return q->alloc_fn(size, q->alloc_arg);
}

void mpscq_free(const struct mpscq *q, void *p, size_t size)
{
    if (p)
        q->free_fn(p, size, q->alloc_arg);
}

/* ------------------------------------------------------------------ */
/* Create and destroy                                                   */

static _Atomic uint64_t next_qid = 1;

void mpscq_config_init(mpscq_config *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
}

static int cpu_ok(void)
{
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    return (c & bit_CMPXCHG16B) != 0;
#else
    return 1;
#endif
}

int mpscq_create(mpscq_t **qp, const mpscq_config *cfg)
{
    mpscq_config def;
    if (!qp)
        return MPSCQ_INVAL;
    if (!cfg) {
        mpscq_config_init(&def);
        cfg = &def;
    }
    size_t n = cfg->segment_slots ? cfg->segment_slots : MPSCQ_SEGMENT_SLOTS_DEFAULT;
    if (n < MPSCQ_SEGMENT_SLOTS_MIN || n > MPSCQ_SEGMENT_SLOTS_MAX || (n & (n - 1)))
        return MPSCQ_INVAL;
    if (cfg->capacity > MPSCQ_CAPACITY_MAX)
        return MPSCQ_INVAL;
    if (!cfg->alloc_fn != !cfg->free_fn)
        return MPSCQ_INVAL;
    if (!cpu_ok()) {
        mpscq_log(NULL, MPSCQ_LOG_ERROR, "this CPU lacks CMPXCHG16B");
        return MPSCQ_INVAL;
    }

    void *(*af)(size_t, void *) = cfg->alloc_fn ? cfg->alloc_fn : default_alloc;
    void (*ff)(void *, size_t, void *) = cfg->free_fn ? cfg->free_fn : default_free;
    struct mpscq *q = af(sizeof *q, cfg->alloc_arg);
    if (!q)
        return MPSCQ_NOMEM;
    if ((uintptr_t)q & 15) {
        /* The pool head needs CMPXCHG16B's 16-byte alignment: refuse a
         * custom alloc_fn that breaks the documented 64, do not fault. */
        static const char why[] = "alloc_fn returned memory that is not 16-byte aligned";
        ff(q, sizeof *q, cfg->alloc_arg);
        if (cfg->log_fn)
            cfg->log_fn(MPSCQ_LOG_ERROR, why, cfg->log_arg);
        else
            mpscq_log(NULL, MPSCQ_LOG_ERROR, why);
        return MPSCQ_INVAL;
    }
    memset(q, 0, sizeof *q);
    q->alloc_fn = af;
    q->free_fn = ff;
    q->alloc_arg = cfg->alloc_arg;
    q->log_fn = cfg->log_fn;
    q->log_arg = cfg->log_arg;
    q->nslots = n;
    q->mask = n - 1;
    q->shift = (unsigned)__builtin_ctzll((unsigned long long)n);
    size_t bytes = sizeof(struct mpscq_segment) + n * sizeof(void *) + n;
    q->seg_bytes = (bytes + MPSCQ_CACHELINE - 1) & ~(size_t)(MPSCQ_CACHELINE - 1);
    mpscq_seg_mem_setup(q, cfg->alloc_fn != NULL);
    q->capacity = cfg->capacity;
    /* An eighth of the capacity, at most 64: FULL may then be seen with up
     * to credit_batch - 1 places free (design.md s. 6). */
    q->credit_batch = cfg->capacity / 8 < 1 ? 1 : cfg->capacity / 8 > 64 ? 64 : cfg->capacity / 8;
    q->need_fence = !mpscq_wait_init();
    mpscq_spin_init();
    /* Relaxed: only uniqueness matters. */
    q->qid = atomic_fetch_add_explicit(&next_qid, 1, memory_order_relaxed);

    atomic_init(&q->tail, 0);
    atomic_init(&q->parked, 0);
    q->wait_spin_ns = MPSCQ_WAIT_SPIN_MAX_NS;
    atomic_init(&q->close_ticket, MPSCQ_TICKET_UNSET);
    atomic_init(&q->records, NULL);
    atomic_init(&q->credits, (int64_t)cfg->capacity);
    atomic_init(&q->dequeued, 0);
    atomic_init(&q->pool.ptr, NULL);
    atomic_init(&q->pool.tag, 0);
    atomic_init(&q->pool_count, 0);
    for (unsigned i = 0; i < MPSCQ_DIR_TOP; i++)
        atomic_init(&q->dir[i], NULL);
    q->pend = q->pend_inline;
    q->cap_pend = sizeof q->pend_inline / sizeof q->pend_inline[0];
    MPSCQ_HG_ATOMIC_VAR(q->tail);
    MPSCQ_HG_ATOMIC_VAR(q->hint);
    MPSCQ_HG_ATOMIC_VAR(q->parked);
    MPSCQ_HG_ATOMIC_VAR(q->close_ticket);
    MPSCQ_HG_ATOMIC_VAR(q->records);
    MPSCQ_HG_ATOMIC_VAR(q->credits);
    MPSCQ_HG_ATOMIC_VAR(q->dequeued);
    MPSCQ_HG_ATOMIC_VAR(q->pool);
    MPSCQ_HG_ATOMIC_VAR(q->pool_count);
    MPSCQ_HG_ATOMIC_VAR(q->dir);
    MPSCQ_HG_ATOMIC(&q->st_full, (size_t)((char *)(&q->warned[2]) - (char *)&q->st_full));

    /* No thread has a record yet, so the first segment comes straight
     * from the allocator (the pool is empty anyway). */
    struct mpscq_hp_rec none;
    memset(&none, 0, sizeof none);
    atomic_init(&none.hp, NULL);
    struct mpscq_segment *s = mpscq_seg_get(q, &none, NULL);
    if (!s) {
        ff(q, sizeof *q, cfg->alloc_arg);
        return MPSCQ_NOMEM;
    }
    s->id = 0;
    atomic_init(&q->hint, s);
    q->scan_seg = q->oldest = s;
    mpscq_hp_register_queue(q);
    /* The caller hands q to other threads through its own synchronization
     * (thread creation, a mutex, a release store), which publishes all
     * of the above. */
    *qp = q;
    return MPSCQ_OK;
}

/* ------------------------------------------------------------------ */
/* Enqueue                                                              */

/* A spare that came fresh from the allocator and was never published
 * carries this id until it is linked (which sets the real id): no other
 * thread can know its address, so giving it back may free it at once. */
#define MPSCQ_SEG_ID_FRESH UINT64_MAX

/* Make sure r holds `need` private segments, before any ticket is taken,
 * so that a failed allocation leaves nothing behind.  A spare's pool_next
 * links the owner's private list: only the owner touches it (relaxed). */
static int ensure_spares(struct mpscq *q, struct mpscq_hp_rec *r, size_t need)
{
    while (r->nspare < need) {
        int pooled;
        struct mpscq_segment *s = mpscq_seg_get(q, r, &pooled);
        if (!s)
            return MPSCQ_NOMEM;
        if (!pooled)
            s->id = MPSCQ_SEG_ID_FRESH;
        atomic_store_explicit(&s->pool_next, r->spare, memory_order_relaxed);
        r->spare = s;
        r->nspare++;
    }
    return MPSCQ_OK;
}

/* Give back r's spares beyond `keep`: a fresh one to the allocator, a
 * pooled one (a stale popper may still name it) to the pool, with at most
 * two CAS attempts each, so that an enqueue stays wait-free; what the
 * pool does not take in time stays a spare of r. */
static void spares_trim(struct mpscq *q, struct mpscq_hp_rec *r, size_t keep)
{
    while (r->nspare > keep) {
        struct mpscq_segment *s = r->spare;
        struct mpscq_segment *rest = atomic_load_explicit(&s->pool_next, memory_order_relaxed);
        if (s->id != MPSCQ_SEG_ID_FRESH && !mpscq_seg_give_back(q, s, 2)) {
            /* Still ours: relink it (the attempt overwrote its link). */
            atomic_store_explicit(&s->pool_next, rest, memory_order_relaxed);
            return;
        }
        /* Unlinked before free_fn runs: a free_fn that enqueues on q must
         * not find it among our spares. */
        r->spare = rest;
        r->nspare--;
        if (s->id == MPSCQ_SEG_ID_FRESH)
            mpscq_seg_free(q, s);
    }
}

static struct mpscq_segment *take_spare(struct mpscq *q, struct mpscq_hp_rec *r)
{
    struct mpscq_segment *s = r->spare;
    if (s) {
        r->spare = atomic_load_explicit(&s->pool_next, memory_order_relaxed);
        r->nspare--;
        atomic_store_explicit(&s->pool_next, NULL, memory_order_relaxed);
        return s;
    }
    /* Out of spares: more than a segment's worth of tickets are held by
     * producers that have not linked their segments yet.  We hold a
     * ticket, so we must not give up; retry the allocator with backoff.
     * The hazard pointer stays set, so the pool is not usable here. */
    struct mpscq_backoff b;
    mpscq_backoff_init(&b);
    for (;;) {
        s = mpscq_seg_mem_alloc(q);
        if (s && ((uintptr_t)s & 15)) { /* alloc_fn broke its contract */
            mpscq_seg_mem_free(q, s);
            s = NULL;
        }
        if (s) {
            memset(s, 0, q->seg_bytes);
            MPSCQ_STAT_ADD(q, st_alloc, 1);
            return s;
        }
        mpscq_backoff_wait(&b);
        if (b.fails == 1000)
            mpscq_log(q, MPSCQ_LOG_ERROR,
                      "Enqueue holds a ticket and cannot allocate a segment; retrying");
    }
}

static void give_spare(struct mpscq_hp_rec *r, struct mpscq_segment *s)
{
    atomic_store_explicit(&s->pool_next, r->spare, memory_order_relaxed);
    r->spare = s;
    r->nspare++;
}

/* The segment after s, linking one of our spares if nobody has yet. */
static struct mpscq_segment *next_segment(struct mpscq *q, struct mpscq_hp_rec *r,
                                          struct mpscq_segment *s)
{
    /* Acquire: the linker's id and cleared states are visible. */
    struct mpscq_segment *next = atomic_load_explicit(&s->next, memory_order_acquire);
    if (next) {
        MPSCQ_HB_AFTER(&s->next);
        return next;
    }
    struct mpscq_segment *x = take_spare(q, r);
    x->id = s->id + 1;
    struct mpscq_segment *expect = NULL;
    /* Release on success: x's id and cleared slots are published with the
     * link.  Acquire on failure: we read the winner's segment next. */
    MPSCQ_RMW(1);
    MPSCQ_HB_BEFORE(&s->next);
    if (atomic_compare_exchange_strong_explicit(&s->next, &expect, x,
                                                memory_order_acq_rel,
                                                memory_order_acquire))
        return x;
    MPSCQ_HB_AFTER(&s->next);
    MPSCQ_STAT_ADD(q, st_cas_fail, 1);
    give_spare(r, x);
    return expect;
}

static void write_slot(struct mpscq *q, struct mpscq_segment *s, uint64_t t,
                       void *msg, unsigned state, memory_order mo)
{
    size_t i = (size_t)(t & q->mask);
    _Atomic unsigned char *st = mpscq_seg_state(s, q->nslots);
    mpscq_seg_vals(s)[i] = msg;
    if (mo == memory_order_release)
        MPSCQ_HB_BEFORE(&st[i]);
    atomic_store_explicit(&st[i], (unsigned char)state, mo);
}

/* Finish an enqueue of msgs[0..n-1] at tickets [t, t+n), walking from
 * `start` (protected by r's hazard pointer, at or before t's segment). */
static void enqueue_finish_n(struct mpscq *q, struct mpscq_hp_rec *r,
                             void *const *msgs, size_t n, uint64_t t,
                             struct mpscq_segment *start)
{
    uint64_t first_id = t >> q->shift;
    uint64_t last_id = (t + n - 1) >> q->shift;
    struct mpscq_segment *s = start, *first = NULL;
    while (s->id < last_id) {
        if (s->id == first_id)
            first = s;
        s = next_segment(q, r, s);
    }
    if (!first)
        first = s;
    if (s != start) {
        /* One attempt to move the hint forward; seq_cst.  Failure means
         * somebody else moved it.  start is protected by our hazard
         * pointer, so it cannot have been recycled (no ABA). */
        struct mpscq_segment *expect = start;
        MPSCQ_RMW(1);
        MPSCQ_HB_BEFORE(&q->hint);
        if (!atomic_compare_exchange_strong_explicit(&q->hint, &expect, s,
                                                     memory_order_seq_cst,
                                                     memory_order_relaxed))
            MPSCQ_STAT_ADD(q, st_cas_fail, 1);
    }
    if (n > 1) {
        /* Interior slots first (relaxed: published by the head's release
         * store below), each marked FOLLOWS so that the consumer never
         * takes one ahead of its predecessor: all the state bytes in one
         * quick pass, then the values.  A consumer polling meanwhile so
         * learns the whole batch as interior at once (design.md s. 8)
         * instead of re-reading a long unwritten tail on every pass; it
         * reads no interior value before the head's release. */
        for (int pass = 0; pass < 2; pass++) {
            struct mpscq_segment *w = first;
            for (size_t k = 1; k < n; k++) {
                uint64_t tk = t + k;
                while (w->id != (tk >> q->shift)) {
                    struct mpscq_segment *prev = w;
                    w = atomic_load_explicit(&prev->next, memory_order_acquire);
                    MPSCQ_HB_AFTER(&prev->next);
                }
                size_t i = (size_t)(tk & q->mask);
                if (pass == 0)
                    atomic_store_explicit(&mpscq_seg_state(w, q->nslots)[i],
                                          (unsigned char)(MPSCQ_SLOT_READY | MPSCQ_SLOT_FOLLOWS |
                                                          (k + 1 < n ? MPSCQ_SLOT_CONT : 0)),
                                          memory_order_relaxed);
                else
                    mpscq_seg_vals(w)[i] = msgs[k];
            }
        }
    }
    if (n > 1)
        MPSCQ_TEST_HOOK(MPSCQ_HOOK_BEFORE_PUBLISH, q, t);
    /* Release: the head slot publishes the whole batch. */
    write_slot(q, first, t, msgs[0],
               MPSCQ_SLOT_READY | (n > 1 ? MPSCQ_SLOT_CONT : 0),
               memory_order_release);
    /* Release: our reads of the segments are done. */
    MPSCQ_HB_BEFORE(&r->hp);
    atomic_store_explicit(&r->hp, NULL, memory_order_release);
    mpscq_notify(q);
}

/* Reserve n places in a bounded queue: one load decides the common FULL,
 * then a fetch-and-add with rollback keeps admission exact under races. */
static int take_credits(struct mpscq *q, size_t n)
{
    /* Relaxed: credits order nothing but themselves (tickets are never
     * reused, so a returned credit guards no memory). */
    if (atomic_load_explicit(&q->credits, memory_order_relaxed) < (int64_t)n) {
        if (atomic_load_explicit(&q->tail, memory_order_relaxed) & MPSCQ_TAIL_CLOSED) {
            MPSCQ_STAT_ADD(q, st_closed, 1);
            return MPSCQ_CLOSED;
        }
        MPSCQ_STAT_ADD(q, st_full, 1);
        return MPSCQ_FULL;
    }
    MPSCQ_RMW(1);
    int64_t old = atomic_fetch_sub_explicit(&q->credits, (int64_t)n, memory_order_relaxed);
    if (old < (int64_t)n) {
        MPSCQ_RMW(1);
        atomic_fetch_add_explicit(&q->credits, (int64_t)n, memory_order_relaxed);
        MPSCQ_STAT_ADD(q, st_full, 1);
        return MPSCQ_FULL;
    }
    return MPSCQ_OK;
}

static void return_credits(struct mpscq *q, size_t n)
{
    if (q->capacity) {
        MPSCQ_RMW(1);
        atomic_fetch_add_explicit(&q->credits, (int64_t)n, memory_order_relaxed);
    }
}

/* Everything an enqueue of n messages needs before its ticket: the
 * thread's record r (NULL when registering it failed), in a bounded queue
 * n places, and n / N + 1 spare segments.  Admission and closure are
 * decided before anything is allocated, and a call that fails gives back
 * what it took: places, and spares beyond the one a record keeps. */
static int enqueue_prepare(struct mpscq *q, struct mpscq_hp_rec *r, size_t n)
{
    if (MPSCQ_UNLIKELY(!r)) {
        MPSCQ_STAT_ADD(q, st_nomem, 1);
        return MPSCQ_NOMEM;
    }
    if (q->capacity) {
        int rc = take_credits(q, n);
        if (rc != MPSCQ_OK)
            return rc;
    }
    size_t need = (n >> q->shift) + 1;
    if (MPSCQ_LIKELY(r->nspare >= need))
        return MPSCQ_OK;
    /* Relaxed: only the closed bit is wanted; the ticket's XADD decides
     * for real.  This saves allocating for a call that cannot succeed. */
    if (atomic_load_explicit(&q->tail, memory_order_relaxed) & MPSCQ_TAIL_CLOSED) {
        return_credits(q, n);
        MPSCQ_STAT_ADD(q, st_closed, 1);
        return MPSCQ_CLOSED;
    }
    if (ensure_spares(q, r, need) != MPSCQ_OK) {
        spares_trim(q, r, 1);
        return_credits(q, n);
        MPSCQ_STAT_ADD(q, st_nomem, 1);
        return MPSCQ_NOMEM;
    }
    return MPSCQ_OK;
}

/* The fast path's continuation when the ticket is not in the hinted
 * segment. */
int mpscq_enqueue_finish(struct mpscq *q, struct mpscq_hp_rec *r, void *msg,
                         uint64_t ticket, struct mpscq_segment *start)
{
    enqueue_finish_n(q, r, &msg, 1, ticket, start);
    return MPSCQ_OK;
}

/* The fast path's continuation when its ticket carried the closed bit
 * (the hazard is already released). */
int mpscq_enqueue_closed(struct mpscq *q)
{
    return_credits(q, 1);
    MPSCQ_STAT_ADD(q, st_closed, 1);
    return MPSCQ_CLOSED;
}

/* First enqueue of this thread on q, no spare, or a bounded queue. */
__attribute__((noinline)) int mpscq_enqueue_prepared(struct mpscq *q, struct mpscq_hp_rec *r,
                                                     void *msg)
{
    int rc = enqueue_prepare(q, r, 1);
    if (MPSCQ_UNLIKELY(rc != MPSCQ_OK))
        return rc;
    return mpscq_fast_enqueue(q, r, msg);
}

int mpscq_enqueue(mpscq_t *q, void *msg)
{
    if (MPSCQ_UNLIKELY(!q))
        return MPSCQ_INVAL;
    struct mpscq_hp_rec *r = mpscq_hp_acquire(q);
    if (MPSCQ_UNLIKELY(!r || !r->spare || q->capacity))
        return mpscq_enqueue_prepared(q, r, msg);
    /* A tail call: the fast path finishes the enqueue. */
    return mpscq_fast_enqueue(q, r, msg);
}

int mpscq_enqueue_batch_check(struct mpscq *q, size_t n)
{
    if (q->capacity && n > q->capacity) {
        MPSCQ_STAT_ADD(q, st_full, 1);
        return MPSCQ_FULL;
    }
    if (n > (MPSCQ_TAIL_CLOSED >> 2))
        return MPSCQ_INVAL;
    return MPSCQ_OK;
}

int mpscq_enqueue_batch(mpscq_t *q, void *const *msgs, size_t n)
{
    if (!q || (!msgs && n))
        return MPSCQ_INVAL;
    if (n == 0)
        return MPSCQ_OK;
    int rc = mpscq_enqueue_batch_check(q, n);
    if (rc != MPSCQ_OK)
        return rc;
    return mpscq_enqueue_batch_rec(q, mpscq_hp_acquire(q), msgs, n);
}

int mpscq_enqueue_batch_rec(struct mpscq *q, struct mpscq_hp_rec *r, void *const *msgs,
                            size_t n)
{
    int rc = enqueue_prepare(q, r, n);
    if (rc != MPSCQ_OK)
        return rc;
    struct mpscq_segment *s;
    uint64_t t = mpscq_fast_reserve(q, r, n, &s);
    if (t & MPSCQ_TAIL_CLOSED) {
        /* Release: our read of s is done; nothing was kept. */
        MPSCQ_HB_BEFORE(&r->hp);
        atomic_store_explicit(&r->hp, NULL, memory_order_release);
        spares_trim(q, r, 1);
        return_credits(q, n);
        MPSCQ_STAT_ADD(q, st_closed, 1);
        return MPSCQ_CLOSED;
    }
    enqueue_finish_n(q, r, msgs, n, t, s);
    return MPSCQ_OK;
}

/* ------------------------------------------------------------------ */
/* Dequeue (the single consumer)                                        */

static inline unsigned slot_state(const struct mpscq *q, struct mpscq_segment *s, uint64_t idx)
{
    /* Acquire: pairs with the producer's release store of the state. */
    return atomic_load_explicit(&mpscq_seg_state(s, q->nslots)[idx & q->mask],
                                memory_order_acquire);
}

static inline int takeable(unsigned st)
{
    return (st & (MPSCQ_SLOT_READY | MPSCQ_SLOT_FOLLOWS | MPSCQ_SLOT_TAKEN)) == MPSCQ_SLOT_READY;
}

/* The segment holding q->scan, stepping to the next one if it is linked. */
static struct mpscq_segment *scan_segment(struct mpscq *q)
{
    struct mpscq_segment *s = q->scan_seg;
    if ((q->scan >> q->shift) == s->id)
        return s;
    /* Acquire: the linker's id and cleared states. */
    struct mpscq_segment *n = atomic_load_explicit(&s->next, memory_order_acquire);
    if (!n)
        return NULL;
    MPSCQ_HB_AFTER(&s->next);
    q->scan_seg = n;
    return n;
}

/* Room for `extra` more runs in the passed set. */
static int pend_reserve(struct mpscq *q, size_t extra)
{
    if (q->npend + extra <= q->cap_pend)
        return 1;
    size_t cap = q->cap_pend * 2;
    struct mpscq_pending *p = mpscq_alloc(q, cap * sizeof *p);
    if (!p)
        return 0;
    memcpy(p, q->pend, q->npend * sizeof *p);
    if (q->pend != q->pend_inline)
        mpscq_free(q, q->pend, q->cap_pend * sizeof *p);
    q->pend = p;
    q->cap_pend = cap;
    return 1;
}

/* Record ticket idx (in s) as passed: it extends the last run when it
 * follows it, as every ticket of an overtaken batch does.  0 when a new
 * run was needed and could not be allocated. */
static int pend_push(struct mpscq *q, struct mpscq_segment *s, uint64_t idx)
{
    MPSCQ_PEND_WORK(1);
    if (q->npend) {
        struct mpscq_pending *last = &q->pend[q->npend - 1];
        if (last->idx + last->n == idx) {
            last->n++;
            return 1;
        }
    }
    /* Keep one spare entry, so that taking from the middle of a run can
     * usually split it without allocating (take_pend). */
    if (!pend_reserve(q, 2))
        return 0;
    q->pend[q->npend].seg = s;
    q->pend[q->npend].idx = idx;
    q->pend[q->npend].n = 1;
    q->pend[q->npend].known = 0;
    q->pend[q->npend].kseg = NULL;
    q->npend++;
    return 1;
}

/* Recycle drained segments, oldest first, stopping at the first one a
 * hazard pointer names (doc/design.md, "Reclamation"). */
static void reclaim(struct mpscq *q)
{
    uint64_t head_id = q->head >> q->shift;
    while (q->oldest->id < head_id && q->oldest != q->scan_seg) {
        struct mpscq_segment *o = q->oldest;
        /* Non-NULL: scan_seg was reached from o through next. */
        struct mpscq_segment *next = atomic_load_explicit(&o->next, memory_order_acquire);
        /* 1. Unlink o from the only shared entry point, the hint. */
        struct mpscq_segment *h = atomic_load_explicit(&q->hint, memory_order_acquire);
        if (h == o) {
            MPSCQ_RMW(1);
            MPSCQ_HB_BEFORE(&q->hint);
            /* seq_cst; on failure a producer moved the hint further. */
            if (!atomic_compare_exchange_strong_explicit(&q->hint, &h, next,
                                                         memory_order_seq_cst,
                                                         memory_order_relaxed))
                MPSCQ_STAT_ADD(q, st_cas_fail, 1);
        }
        /* 2. StoreLoad: the unlink precedes the hazard scan. */
        atomic_thread_fence(memory_order_seq_cst);
        if (mpscq_hp_protected(q, o, 1))
            break;
        q->oldest = next;
        mpscq_seg_put(q, o);
    }
    /* Spares that exiting threads pushed beyond the pool's bound. */
    mpscq_seg_pool_trim(q);
}

static inline void maybe_reclaim(struct mpscq *q)
{
    if (q->oldest->id < (q->head >> q->shift) && q->oldest != q->scan_seg)
        reclaim(q);
}

static void after_take(struct mpscq *q, uint64_t idx, unsigned st)
{
    q->last = idx;
    q->last_cont = (int)(st & MPSCQ_SLOT_CONT);
    q->head = q->npend ? q->pend[0].idx : q->scan;
    /* Relaxed: only the consumer writes it; readers want a count. */
    atomic_store_explicit(&q->dequeued,
                          atomic_load_explicit(&q->dequeued, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    mpscq_credit_one(q);
    maybe_reclaim(q);
}

static void take_scan(struct mpscq *q, struct mpscq_segment *s, unsigned st, void **msg)
{
    uint64_t idx = q->scan;
    MPSCQ_HB_AFTER(&mpscq_seg_state(s, q->nslots)[idx & q->mask]);
    *msg = mpscq_seg_vals(s)[idx & q->mask];
    q->scan = idx + 1;
    after_take(q, idx, st);
}

/* The segment of ticket idx, walking forward from s (which holds a ticket
 * at or below it).  Passed tickets lie below scan, so their segments are
 * linked. */
static struct mpscq_segment *seg_of(const struct mpscq *q, struct mpscq_segment *s,
                                    uint64_t idx)
{
    while (s->id != (idx >> q->shift)) {
        struct mpscq_segment *prev = s;
        /* Acquire: the linker's id and cleared states. */
        s = atomic_load_explicit(&prev->next, memory_order_acquire);
        MPSCQ_HB_AFTER(&prev->next);
    }
    return s;
}

static int slot_taken(const struct mpscq *q, struct mpscq_segment *s, uint64_t t)
{
    MPSCQ_PEND_WORK(1);
    /* Relaxed: the mark is the consumer's own store. */
    return (atomic_load_explicit(&mpscq_seg_state(s, q->nslots)[t & q->mask],
                                 memory_order_relaxed) & MPSCQ_SLOT_TAKEN) != 0;
}

/* Drop run i when it is empty. */
static void run_drop_if_empty(struct mpscq *q, size_t i)
{
    if (q->pend[i].n)
        return;
    MPSCQ_PEND_WORK(q->npend - i - 1);
    memmove(&q->pend[i], &q->pend[i + 1], (q->npend - i - 1) * sizeof q->pend[i]);
    q->npend--;
}

/* Step run i's front past slots marked taken (each stepped over once, so
 * O(1) amortized), then drop the run if nothing is left. */
static void run_trim_front(struct mpscq *q, size_t i)
{
    struct mpscq_pending *e = &q->pend[i];
    while (e->n && slot_taken(q, e->seg = seg_of(q, e->seg, e->idx), e->idx)) {
        e->idx++;
        e->n--;
        if (e->known)
            e->known--;
    }
    run_drop_if_empty(q, i);
}

/* The same at the back.  Finding the back's segment walks the run's
 * segments from its front: only a take at the back calls this (once per
 * batch that ends a run). */
static void run_trim_back(struct mpscq *q, size_t i)
{
    struct mpscq_pending *e = &q->pend[i];
    struct mpscq_segment *s = e->seg;
    while (e->n && slot_taken(q, s = seg_of(q, s, e->idx + e->n - 1), e->idx + e->n - 1)) {
        e->n--;
        s = e->seg; /* walk again from the front: the back moved down */
    }
    if (e->known >= e->n) {
        e->known = e->n ? e->n - 1 : 0;
        e->kseg = NULL;
    }
    run_drop_if_empty(q, i);
}

/* Take ticket t (in segment s, state st) from run i of the passed set.
 * The run shrinks at either end; taking from its middle splits it in two,
 * or, when no entry can be had for the second half, marks the slot
 * MPSCQ_SLOT_TAKEN (scans skip it, trims step over it).  So a run costs
 * O(1) per message taken from it, plus one entry move per run removed or
 * split (runs are few: at most one per enqueue in flight, design.md
 * s. 8). */
static void take_pend(struct mpscq *q, size_t i, uint64_t t, struct mpscq_segment *s,
                      unsigned st, void **msg)
{
    struct mpscq_pending *e = &q->pend[i];
    _Atomic unsigned char *sv = mpscq_seg_state(s, q->nslots);
    MPSCQ_HB_AFTER(&sv[t & q->mask]);
    *msg = mpscq_seg_vals(s)[t & q->mask];
    uint64_t end = e->idx + e->n;
    if (t == e->idx) {
        e->idx = t + 1;
        e->n--;
        e->seg = s; /* at or before the new front */
        if (e->known)
            e->known--; /* the new front was the first known interior */
        run_trim_front(q, i);
    } else if (t + 1 == end) {
        e->n--;
        run_trim_back(q, i);
    } else if (q->npend < q->cap_pend) {
        /* Middle: split into [idx, t) and [t + 1, end). */
        MPSCQ_PEND_WORK(q->npend - i);
        memmove(&q->pend[i + 2], &q->pend[i + 1], (q->npend - i - 1) * sizeof *e);
        q->npend++;
        uint64_t known_end = e->idx + e->known; /* last known interior */
        struct mpscq_segment *kseg = e->kseg;
        e->n = t - e->idx;
        if (e->known >= e->n) {
            e->known = e->n - 1;
            e->kseg = NULL;
        }
        struct mpscq_pending *f = &q->pend[i + 1];
        f->seg = s;
        f->idx = t + 1;
        f->n = end - t - 1;
        f->known = known_end > t + 1 ? known_end - (t + 1) : 0;
        f->kseg = f->known ? kseg : NULL; /* the same last known ticket */
        run_trim_front(q, i + 1);
        run_trim_back(q, i);
    } else {
        /* Relaxed: only the consumer reads the mark; the producer wrote
         * this slot for the last time already. */
        atomic_store_explicit(&sv[t & q->mask], (unsigned char)(st | MPSCQ_SLOT_TAKEN),
                              memory_order_relaxed);
    }
    after_take(q, t, st);
}

/* Index of the run holding ticket t, or SIZE_MAX (runs are sorted). */
static size_t pend_find(const struct mpscq *q, uint64_t t)
{
    size_t lo = 0, hi = q->npend;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        MPSCQ_PEND_WORK(1);
        if (t < q->pend[mid].idx)
            hi = mid;
        else if (t >= q->pend[mid].idx + q->pend[mid].n)
            lo = mid + 1;
        else
            return mid;
    }
    return SIZE_MAX;
}

static void refresh_limit(struct mpscq *q)
{
    if (q->closed_seen)
        return;
    /* Acquire, and read before any slot of this pass: an enqueue that
     * returned before some ticket below the new limit was taken happens
     * before this load (the ticket's seq_cst XADD is in the release
     * sequence we read from), so its slot reads as written in this pass.
     * That is what makes taking the first written slot linearizable
     * (doc/design.md, "Dequeue order"). */
    uint64_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
    if (!(t & MPSCQ_TAIL_CLOSED)) {
        q->limit = t;
        return;
    }
    /* seq_cst: pairs with mpscq_close's seq_cst store, for a consumer
     * that parked after the close (design.md §7). */
    uint64_t ct = atomic_load_explicit(&q->close_ticket, memory_order_seq_cst);
    if (ct != MPSCQ_TICKET_UNSET) {
        q->limit = ct;
        q->closed_seen = 1;
    }
    /* else mpscq_close is between its two steps: keep the previous limit. */
}

int mpscq_dequeue_slow(struct mpscq *q, void **msg)
{
    if (q->last_cont) {
        /* The batch's next message comes next; it was written before the
         * batch head's release store that we acquired. */
        uint64_t want = q->last + 1;
        if (want == q->scan) {
            struct mpscq_segment *s = scan_segment(q);
            take_scan(q, s, slot_state(q, s, want), msg);
            return MPSCQ_OK;
        }
        size_t i = pend_find(q, want);
        if (i != SIZE_MAX) {
            struct mpscq_segment *s = seg_of(q, q->pend[i].seg, want);
            take_pend(q, i, want, s, slot_state(q, s, want), msg);
            return MPSCQ_OK;
        }
        /* Unreachable: a FOLLOWS slot below scan is always pending. */
        q->last_cont = 0;
    }

    refresh_limit(q);
    /* Passed slots first, oldest first, then new ones: the first written
     * slot in ticket order is the one to take. */
    for (size_t i = 0; i < q->npend; i++) {
        struct mpscq_pending *e = &q->pend[i];
        uint64_t end = e->idx + e->n;
        /* The front: a batch head, a single message, or a hole. */
        struct mpscq_segment *s = e->seg;
        MPSCQ_PEND_WORK(1);
        unsigned st = slot_state(q, s, e->idx);
        if (takeable(st)) {
            take_pend(q, i, e->idx, s, st, msg);
            return MPSCQ_OK;
        }
        /* Then the known interiors are skipped, and the known prefix grows
         * while the last known slot says the next is its batch's (CONT)
         * or the next says so itself (FOLLOWS): a batch being written,
         * interior first, is learned once, not re-read on every pass. */
        uint64_t t = e->idx + e->known;
        if (e->known) {
            s = seg_of(q, e->kseg ? e->kseg : s, t);
            st = slot_state(q, s, t);
        }
        while (t + 1 < end) {
            struct mpscq_segment *ns = seg_of(q, s, t + 1);
            MPSCQ_PEND_WORK(1);
            unsigned nst = slot_state(q, ns, t + 1);
            if (!(st & MPSCQ_SLOT_CONT) && !(nst & MPSCQ_SLOT_FOLLOWS))
                break;
            e->known++;
            t++;
            s = ns;
            st = nst;
        }
        if (e->known)
            e->kseg = s; /* holds idx + known: the next pass starts there */
        /* The rest, unknown: any may be takeable. */
        for (t++; t < end; t++) {
            s = seg_of(q, s, t);
            MPSCQ_PEND_WORK(1);
            st = slot_state(q, s, t);
            if (takeable(st)) {
                take_pend(q, i, t, s, st, msg);
                return MPSCQ_OK;
            }
        }
    }
    MPSCQ_TEST_HOOK(MPSCQ_HOOK_CONSUMER_SCAN, q, q->scan);
    while (q->scan < q->limit) {
        struct mpscq_segment *s = scan_segment(q);
        if (!s)
            break;
        unsigned st = slot_state(q, s, q->scan);
        if (takeable(st)) {
            take_scan(q, s, st, msg);
            return MPSCQ_OK;
        }
        /* Not written yet (its producer is between ticket and write),
         * or a batch interior whose head is not written yet. */
        if (!pend_push(q, s, q->scan))
            break;
        q->scan++;
    }
    maybe_reclaim(q);
    mpscq_seg_pool_trim(q);
    /* Nothing to take: every place the consumer freed goes back now. */
    mpscq_credit_flush(q);
    if (q->closed_seen && q->npend == 0 && q->scan >= q->limit)
        return MPSCQ_CLOSED;
    return MPSCQ_EMPTY;
}

/* The fast path's continuation after it took the last slot of a segment. */
int mpscq_dequeue_crossed(struct mpscq *q)
{
    maybe_reclaim(q);
    return MPSCQ_OK;
}

int mpscq_dequeue(mpscq_t *q, void **msg)
{
    if (MPSCQ_UNLIKELY(!q || !msg))
        return MPSCQ_INVAL;
    /* A tail call: the fast path finishes, or continues in
     * mpscq_dequeue_slow. */
    return mpscq_fast_dequeue(q, msg);
}

size_t mpscq_dequeue_batch(mpscq_t *q, void **msgs, size_t max)
{
    size_t n = 0;
    if (!q || !msgs)
        return 0;
    while (n < max && mpscq_dequeue(q, &msgs[n]) == MPSCQ_OK)
        n++;
    return n;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int mpscq_dequeue_wait(mpscq_t *q, void **msg, long long timeout_ns)
{
    if (!q || !msg)
        return MPSCQ_INVAL;
    int rc = mpscq_dequeue(q, msg);
    if (rc != MPSCQ_EMPTY)
        return rc;
    if (timeout_ns == 0)
        return MPSCQ_TIMEOUT;
    uint64_t now = mono_ns();
    uint64_t deadline = timeout_ns < 0 ? UINT64_MAX
                        : (uint64_t)timeout_ns > UINT64_MAX - now ? UINT64_MAX - 1
                                                                   : now + (uint64_t)timeout_ns;
    /* Spin first: a message is often only a write away.  The budget
     * (consumer-private) doubles when spinning found a message and halves
     * when it did not, down to a floor from which it can recover: when
     * messages come further apart than a sleep costs, the consumer stops
     * burning CPU on a spin that never pays.  Never beyond the timeout. */
    unsigned budget = q->wait_spin_ns, spent = 0;
    unsigned cap = timeout_ns > 0 && (unsigned long long)timeout_ns < budget ? (unsigned)timeout_ns
                                                                             : budget;
    for (unsigned ns = 16; spent + ns <= cap; ns <<= 1) {
        mpscq_spin_ns(ns);
        spent += ns;
        rc = mpscq_dequeue(q, msg);
        if (rc != MPSCQ_EMPTY) {
            q->wait_spin_ns = budget * 2 > MPSCQ_WAIT_SPIN_MAX_NS ? MPSCQ_WAIT_SPIN_MAX_NS
                                                                   : budget * 2;
            return rc;
        }
    }
    q->wait_spin_ns = budget / 2 < MPSCQ_WAIT_SPIN_MIN_NS ? MPSCQ_WAIT_SPIN_MIN_NS : budget / 2;
    /* The first sleep is light: no membarrier, and at most
     * MPSCQ_LIGHT_PARK_NS.  A producer whose slot store was still in its
     * store buffer when it read parked == 0 may not wake us; the timeout
     * bounds what that costs.  Only when a light sleep ends with nothing
     * to take does the consumer pay the barrier that makes the wake-up
     * exact (design.md section 7).  A light sleep ended by a producer
     * finds its message in the re-check that opens the next round, which
     * is light again; so at high message rates the consumer never pays
     * the barrier, whose inter-processor interrupts also hit the
     * producers. */
    int light = 1;
    for (;;) {
        /* seq_cst: the Dekker store; mpscq_wait_barrier (exact) orders it
         * before the re-check.  (In the light round it is no StoreLoad
         * fence for C11 - an RCpc load may pass it on AArch64 - which
         * only adds to the misses the light timeout bounds.) */
        atomic_store_explicit(&q->parked, 1, memory_order_seq_cst);
        now = mono_ns();
        if (!light && now < deadline) {
            /* No barrier for a wait that is over anyway: a timed-out
             * call only looks once more (below). */
            MPSCQ_TEST_HOOK(MPSCQ_HOOK_BARRIER, q, 0);
            mpscq_wait_barrier(q);
        }
        rc = mpscq_dequeue(q, msg);
        if (rc != MPSCQ_EMPTY) {
            /* Relaxed: producers only read it to decide on a wake-up; a
             * stale 1 costs one spurious FUTEX_WAKE. */
            atomic_store_explicit(&q->parked, 0, memory_order_relaxed);
            return rc;
        }
        if (now >= deadline) {
            /* Relaxed, as above. */
            atomic_store_explicit(&q->parked, 0, memory_order_relaxed);
            return MPSCQ_TIMEOUT;
        }
        uint64_t left = deadline - now;
        if (light && left > MPSCQ_LIGHT_PARK_NS)
            left = MPSCQ_LIGHT_PARK_NS;
        struct timespec rel, *relp = NULL;
        if (light || deadline != UINT64_MAX) {
            rel.tv_sec = (time_t)(left / 1000000000u);
            rel.tv_nsec = (long)(left % 1000000000u);
            relp = &rel;
        }
        MPSCQ_STAT_ADD(q, st_parks, 1);
        MPSCQ_TEST_HOOK(MPSCQ_HOOK_PARK, q, (uint64_t)light);
        mpscq_futex_wait(&q->parked, 1, relp);
        if (light) {
            /* Re-check before deciding the next round: a light sleep that
             * a producer ended has its message ready now, and the next
             * round stays light.  Only one that found nothing (timeout,
             * or a wake-up whose message another call took) makes the
             * next round exact.  No barrier is needed for this check:
             * finding a message is always correct, and finding none only
             * selects the exact round, which re-checks after its barrier. */
            rc = mpscq_dequeue(q, msg);
            if (rc != MPSCQ_EMPTY) {
                /* Relaxed, as above. */
                atomic_store_explicit(&q->parked, 0, memory_order_relaxed);
                return rc;
            }
            light = 0;
        }
    }
}

/* ------------------------------------------------------------------ */
/* Close, size, stats                                                   */

void mpscq_close(mpscq_t *q)
{
    if (!q)
        return;
    /* seq_cst RMW: every later ticket carries the bit; the returned value
     * counts the tickets taken before. */
    MPSCQ_RMW(1);
    uint64_t old = atomic_fetch_or_explicit(&q->tail, MPSCQ_TAIL_CLOSED, memory_order_seq_cst);
    if (!(old & MPSCQ_TAIL_CLOSED))
        /* seq_cst: ordered before the wake below, so a consumer that parks
         * after it reads this value after its own fence. */
        atomic_store_explicit(&q->close_ticket, old, memory_order_seq_cst);
    mpscq_wake_consumer(q);
}

int mpscq_is_closed(const mpscq_t *q)
{
    if (!q)
        return 0;
    /* Acquire: pairs with the closing fetch_or (seq_cst). */
    return (atomic_load_explicit(&((struct mpscq *)q)->tail, memory_order_acquire) &
            MPSCQ_TAIL_CLOSED) != 0;
}

/* Tickets issued to accepted messages (before any close).  Relaxed loads
 * here and in mpscq_size/mpscq_stats: they report counts, and order
 * nothing. */
static uint64_t accepted(const struct mpscq *q)
{
    struct mpscq *m = (struct mpscq *)q;
    uint64_t t = atomic_load_explicit(&m->tail, memory_order_relaxed);
    if (!(t & MPSCQ_TAIL_CLOSED))
        return t;
    uint64_t ct = atomic_load_explicit(&m->close_ticket, memory_order_relaxed);
    return ct != MPSCQ_TICKET_UNSET ? ct : (t & ~MPSCQ_TAIL_CLOSED);
}

size_t mpscq_size(const mpscq_t *q)
{
    if (!q)
        return 0;
    uint64_t d = atomic_load_explicit(&((struct mpscq *)q)->dequeued, memory_order_relaxed);
    uint64_t a = accepted(q);
    return a > d ? (size_t)(a - d) : 0;
}

size_t mpscq_capacity(const mpscq_t *q)
{
    return q ? q->capacity : 0;
}

void mpscq_stats(const mpscq_t *cq, struct mpscq_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!cq)
        return;
    struct mpscq *q = (struct mpscq *)cq;
#define LD(f) atomic_load_explicit(&q->f, memory_order_relaxed)
    out->enqueued = accepted(q);
    out->dequeued = LD(dequeued);
    out->full_rejections = LD(st_full);
    out->closed_rejections = LD(st_closed);
    out->nomem_failures = LD(st_nomem);
    out->segments_allocated = LD(st_alloc);
    out->segments_recycled = LD(st_recycled);
    out->segments_freed = LD(st_freed);
    out->cas_failures = LD(st_cas_fail);
    out->consumer_parks = LD(st_parks);
#undef LD
}

const char *mpscq_strerror(int status)
{
    switch (status) {
    case MPSCQ_OK: return "success";
    case MPSCQ_EMPTY: return "queue is empty";
    case MPSCQ_FULL: return "queue is full";
    case MPSCQ_CLOSED: return "queue is closed";
    case MPSCQ_TIMEOUT: return "timed out";
    case MPSCQ_NOMEM: return "out of memory";
    case MPSCQ_INVAL: return "invalid argument";
    default: return "unknown status";
    }
}

const char *mpscq_implementation(void)
{
    return MPSCQ_IMPLEMENTATION;
}

/* ------------------------------------------------------------------ */

void mpscq_destroy(mpscq_t *q, void (*drop)(void *msg, void *arg), void *arg)
{
    if (!q)
        return;
    /* First, so that a thread exiting from now on leaves our records alone. */
    mpscq_hp_unregister_queue(q);
    void *m;
    /* Hand every message still queued to drop, in queue order. */
    while (mpscq_dequeue(q, &m) == MPSCQ_OK)
        if (drop)
            drop(m, arg);
    struct mpscq_segment *s = q->oldest;
    while (s) {
        /* Relaxed: destroy runs alone (its contract). */
        struct mpscq_segment *next = atomic_load_explicit(&s->next, memory_order_relaxed);
        mpscq_seg_free(q, s);
        s = next;
    }
    mpscq_seg_pool_drain(q);
    mpscq_hp_free_all(q);
    if (q->pend != q->pend_inline)
        mpscq_free(q, q->pend, q->cap_pend * sizeof *q->pend);
    /* Forget this thread's cache entry, so that a queue created later at
     * the same address cannot hit it (qid would differ anyway). */
    if (mpscq_tls.q == q)
        mpscq_tls.q = NULL;
    void (*ff)(void *, size_t, void *) = q->free_fn;
    void *fa = q->alloc_arg;
    ff(q, sizeof *q, fa);
}
