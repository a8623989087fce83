/*
 * queue.c - a queue's life: create, close, destroy.  Counts and
 * statistics are stats.c, logging, status strings and versions status.c.  The producers' side is enqueue.c, the
 * consumer's dequeue.c and wait.c, bounded mode capacity.c, segments and
 * their recycling segment.c, hazard-pointer records hazard.c.
 *
 * doc/design.md explains the algorithm; comments here give the local
 * reason for each memory order.
 */
#include "config.h"

#include <limits.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "arch.h"
#include "consumer.h"
#include "consumers.h"
#include "hazard.h"
#include "segment.h"
#include "wait.h"

#ifdef MPSCQ_COUNT_RMW
_Thread_local unsigned long mpscq_rmw_count;
#endif
#ifdef MPSCQ_TEST_HOOKS
void (*mpscq_test_hook)(int where, const struct mpscq *q, uint64_t ticket);
_Atomic long mpscq_test_cas_failures;
uint64_t (*mpscq_test_hot_clock)(void);
_Atomic unsigned long mpscq_test_producer_wakes;
_Thread_local unsigned long mpscq_pend_work;
_Atomic unsigned long mpscq_back_steps;
#endif

/* ------------------------------------------------------------------ */
/* Create and destroy                                                   */

static _Atomic uint64_t next_qid = 1;

/* The first mpscq_config a caller may pass (0.2.0: up to nap_ns).  Later
 * versions append fields; a caller's structure is read up to its size. */
#define CONFIG_SIZE_MIN (offsetof(mpscq_config, nap_ns) + sizeof(unsigned long long))

void mpscq_config_init_sized(mpscq_config *cfg, size_t size)
{
    if (!cfg)
        return;
    /* All defaults are zero; a larger (newer) structure is zeroed whole. */
    memset(cfg, 0, size);
}

/* Copy the caller's configuration of `size` bytes into *out (this
 * library's layout): MPSCQ_INVAL when it is shorter than any layout there
 * was, or carries non-zero fields this library does not know. */
static int config_import(mpscq_config *out, const mpscq_config *cfg, size_t size)
{
    memset(out, 0, sizeof *out);
    if (!cfg)
        return MPSCQ_OK;
    if (size < CONFIG_SIZE_MIN)
        return MPSCQ_INVAL;
    const unsigned char *b = (const unsigned char *)cfg;
    for (size_t i = sizeof *out; i < size; i++)
        if (b[i])
            return MPSCQ_INVAL;
    memcpy(out, cfg, size < sizeof *out ? size : sizeof *out);
    return MPSCQ_OK;
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

int mpscq_create_sized(mpscq_t **qp, const mpscq_config *user, size_t size)
{
    mpscq_config def;
    if (!qp || config_import(&def, user, size) != MPSCQ_OK)
        return MPSCQ_INVAL;
    const mpscq_config *cfg = &def;
    size_t n = cfg->segment_slots ? cfg->segment_slots : MPSCQ_SEGMENT_SLOTS_DEFAULT;
    if (n < MPSCQ_SEGMENT_SLOTS_MIN || n > MPSCQ_SEGMENT_SLOTS_MAX || (n & (n - 1)))
        return MPSCQ_INVAL;
    if (cfg->capacity > MPSCQ_CAPACITY_MAX)
        return MPSCQ_INVAL;
    if (!cfg->alloc_fn != !cfg->free_fn)
        return MPSCQ_INVAL;
    if (cfg->nap_ns > MPSCQ_NAP_MAX_NS)
        return MPSCQ_INVAL;
    if (cfg->preallocate && !cfg->capacity)
        return MPSCQ_INVAL; /* an unbounded queue has no size to allocate */
    if (cfg->consumers > 1 && cfg->consumers != MPSCQ_CONSUMERS_MANY)
        return MPSCQ_INVAL;
    if (!cpu_ok()) {
        mpscq_log(NULL, MPSCQ_LOG_ERROR, "this CPU lacks CMPXCHG16B");
        return MPSCQ_INVAL;
    }

    void *(*af)(size_t, void *) = cfg->alloc_fn ? cfg->alloc_fn : mpscq_default_alloc;
    void (*ff)(void *, size_t, void *) = cfg->free_fn ? cfg->free_fn : mpscq_default_free;
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
    /* The header line, then the slot lines (internal.h). */
    q->seg_bytes = sizeof(struct mpscq_segment) + mpscq_slot_lines(n) * MPSCQ_CACHELINE;
    mpscq_seg_mem_setup(q, cfg->alloc_fn != NULL);
    q->capacity = cfg->capacity;
    /* An eighth of the capacity, at most 64: FULL may then be seen with up
     * to release_batch - 1 places free (design.md s. 6). */
    q->release_batch = cfg->capacity / 8 < 1 ? 1 : cfg->capacity / 8 > 64 ? 64 : cfg->capacity / 8;
    q->need_fence = !mpscq_wait_init();
    mpscq_spin_init();
    /* Relaxed: only uniqueness matters. */
    q->qid = atomic_fetch_add_explicit(&next_qid, 1, memory_order_relaxed);

    atomic_init(&q->tail, 0);
    atomic_init(&q->parked, 0);
    q->wait_spin_ns = MPSCQ_WAIT_SPIN_MAX_NS;
    q->nap_ns = cfg->nap_ns ? cfg->nap_ns : MPSCQ_NAP_DEFAULT_NS;
    q->nap_idle_ns = 8 * q->nap_ns > 1000000u ? 8 * q->nap_ns : 1000000u;
    atomic_init(&q->close_ticket, MPSCQ_TICKET_UNSET);
    atomic_init(&q->records, NULL);
    atomic_init(&q->released, 0);
    atomic_init(&q->rejected, 0);
    atomic_init(&q->space_armed, 0);
    atomic_init(&q->space_seq, 0);
    atomic_init(&q->dequeued, 0);
    q->many = cfg->consumers == MPSCQ_CONSUMERS_MANY;
    /* No consumer call yet; a many-consumer queue names a mark no thread
     * has, so every consumer call goes to consumers.c. */
    atomic_init(&q->consumer, q->many ? &mpscq_mark_many : NULL);
    atomic_init(&q->chead, 0);
    atomic_init(&q->reclaiming, 0);
    atomic_init(&q->reclaim_left, 0);
    atomic_init(&q->csleepers, 0);
    atomic_init(&q->cidle, UINT64_MAX);
    atomic_init(&q->chot, 0);
    atomic_init(&q->taking, 0);
    atomic_init(&q->pool.ptr, NULL);
    atomic_init(&q->pool.tag, 0);
    atomic_init(&q->pool_count, 0);
    atomic_init(&q->pool_keep, MPSCQ_POOL_MAX);
    for (unsigned i = 0; i < MPSCQ_DIR_TOP; i++)
        atomic_init(&q->dir[i], NULL);
    q->pend = q->pend_inline;
    q->cap_pend = sizeof q->pend_inline / sizeof q->pend_inline[0];
    MPSCQ_HG_ATOMIC_VAR(q->tail);
    MPSCQ_HG_ATOMIC_VAR(q->hint);
    MPSCQ_HG_ATOMIC_VAR(q->parked);
    MPSCQ_HG_ATOMIC_VAR(q->close_ticket);
    MPSCQ_HG_ATOMIC_VAR(q->records);
    MPSCQ_HG_ATOMIC_VAR(q->released);
    MPSCQ_HG_ATOMIC_VAR(q->rejected);
    MPSCQ_HG_ATOMIC_VAR(q->space_armed);
    MPSCQ_HG_ATOMIC_VAR(q->space_seq);
    MPSCQ_HG_ATOMIC_VAR(q->dequeued);
    MPSCQ_HG_ATOMIC_VAR(q->consumer);
    MPSCQ_HG_ATOMIC_VAR(q->taking);
    MPSCQ_HG_ATOMIC_VAR(q->chead);
    MPSCQ_HG_ATOMIC_VAR(q->cseg);
    MPSCQ_HG_ATOMIC_VAR(q->reclaiming);
    MPSCQ_HG_ATOMIC_VAR(q->reclaim_left);
    MPSCQ_HG_ATOMIC_VAR(q->csleepers);
    MPSCQ_HG_ATOMIC_VAR(q->cidle);
    MPSCQ_HG_ATOMIC_VAR(q->chot);
    MPSCQ_HG_ATOMIC_VAR(q->pool);
    MPSCQ_HG_ATOMIC_VAR(q->pool_count);
    MPSCQ_HG_ATOMIC_VAR(q->pool_keep);
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
    s->base = 0;
    atomic_init(&q->hint, s);
    atomic_init(&q->cseg, s);
    q->scan_seg = q->oldest = s;
    if (cfg->preallocate) {
        /* The segments the queue needs (design.md s. 5): the capacity's
         * twice over (refused tickets hold slots too) and a few more, in
         * the pool for good; and room for many passed runs. */
        size_t segs = 2 * ((cfg->capacity + n - 1) / n) + 4;
        struct mpscq_pending *p = NULL;
        size_t cap = 256;
        if (segs > (size_t)LONG_MAX / 2 ||
            !(p = mpscq_alloc(q, cap * sizeof *p)) ||
            mpscq_seg_prealloc(q, (long)segs) != MPSCQ_OK) {
            if (p)
                mpscq_free(q, p, cap * sizeof *p);
            mpscq_seg_free(q, s);
            ff(q, sizeof *q, cfg->alloc_arg);
            return MPSCQ_NOMEM;
        }
        q->pend = p;
        q->cap_pend = cap;
        q->preallocated = 1;
    }
    mpscq_hp_register_queue(q);
    /* The caller hands q to other threads through its own synchronization
     * (thread creation, a mutex, a release store), which publishes all
     * of the above. */
    *qp = q;
    return MPSCQ_OK;
}

/* ------------------------------------------------------------------ */
/* Close                                                                 */

void mpscq_close(mpscq_t *q)
{
    if (!q)
        return;
    /* seq_cst RMW: every later ticket carries the bit; the returned value
     * counts the tickets taken before. */
    MPSCQ_RMW(1);
    uint64_t old = atomic_fetch_or_explicit(&q->tail, MPSCQ_TAIL_CLOSED, memory_order_seq_cst);
    if (!(old & MPSCQ_TAIL_CLOSED)) {
        MPSCQ_TEST_HOOK(MPSCQ_HOOK_CLOSE_GAP, q, old);
        /* seq_cst: ordered before the wake below, so a consumer that parks
         * after it reads this value after its own fence. */
        atomic_store_explicit(&q->close_ticket, old, memory_order_seq_cst);
    }
    mpscq_wake_consumer_close(q);
    mpscq_space_wake_close(q);
}

int mpscq_is_closed(const mpscq_t *q)
{
    if (!q)
        return 0;
    /* Acquire: pairs with the closing fetch_or (seq_cst). */
    return (atomic_load_explicit(&((struct mpscq *)q)->tail, memory_order_acquire) &
            MPSCQ_TAIL_CLOSED) != 0;
}


/* ------------------------------------------------------------------ */

void mpscq_destroy(mpscq_t *q, void (*drop)(void *msg, void *arg), void *arg)
{
    if (!q)
        return;
    /* A queue still in a set leaves it: the set never names freed memory. */
    mpscq_set_leave(q);
    /* First, so that a thread exiting from now on leaves our records alone. */
    mpscq_hp_unregister_queue(q);
    void *m;
    /* Hand every message still queued to drop, in queue order. */
    if (q->many)
        mpscq_many_drain(q, drop, arg);
    else
        while (mpscq_dequeue_in(q, &m) == MPSCQ_OK)
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
