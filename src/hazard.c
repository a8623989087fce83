/*
 * hazard.c - hazard-pointer records and their per-thread cache.
 */
#include "config.h"

#include <pthread.h>
#include <string.h>

#include "hazard.h"
#include "segment.h"

_Thread_local struct mpscq_tls_ent mpscq_tls[MPSCQ_TLS_ENTRIES];

/* Registry of live queues.  Only slow paths take this lock: queue create
 * and destroy, and a thread giving up a record (exit or cache eviction). */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mpscq *registry_head;
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

static int queue_is_live(const struct mpscq *q, uint64_t qid)
{
    for (struct mpscq *p = registry_head; p; p = p->live_next)
        if (p == q && p->qid == qid)
            return 1;
    return 0;
}

void mpscq_hp_register_queue(struct mpscq *q)
{
    pthread_mutex_lock(&registry_lock);
    q->live_next = registry_head;
    registry_head = q;
    pthread_mutex_unlock(&registry_lock);
}

void mpscq_hp_unregister_queue(struct mpscq *q)
{
    pthread_mutex_lock(&registry_lock);
    for (struct mpscq **pp = &registry_head; *pp; pp = &(*pp)->live_next) {
        if (*pp == q) {
            *pp = q->live_next;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
}

/* Give a record back to its queue: its spares to the pool, then mark it
 * free for the next thread.  Caller holds registry_lock and has checked
 * that the queue is live. */
static void release_record(struct mpscq *q, struct mpscq_hp_rec *r)
{
    /* The spare list is owner-private (relaxed). */
    while (r->spare) {
        struct mpscq_segment *s = r->spare;
        r->spare = atomic_load_explicit(&s->pool_next, memory_order_relaxed);
        mpscq_seg_put(q, s, 0);
    }
    r->nspare = 0;
    /* Release: the spare hand-back above happens before another thread
     * acquires this record (acquire CAS in find_record). */
    atomic_store_explicit(&r->hp, NULL, memory_order_release);
    MPSCQ_HB_BEFORE(&r->active);
    atomic_store_explicit(&r->active, 0, memory_order_release);
}

static void drop_entry(struct mpscq_tls_ent *e)
{
    pthread_mutex_lock(&registry_lock);
    /* The cast drops const: a live queue is owned by its creator, and the
     * registry lock serializes us against mpscq_destroy. */
    if (e->q && queue_is_live(e->q, e->qid))
        release_record((struct mpscq *)e->q, e->rec);
    pthread_mutex_unlock(&registry_lock);
    e->q = NULL;
    e->rec = NULL;
}

static void thread_exit(void *unused)
{
    (void)unused;
    for (int i = 0; i < MPSCQ_TLS_ENTRIES; i++)
        if (mpscq_tls[i].q)
            drop_entry(&mpscq_tls[i]);
}

/* Helgrind does not model pthread_once: the annotations give it the edge
 * from the initializer to every caller that returns from pthread_once. */
static void make_exit_key(void)
{
    pthread_key_create(&exit_key, thread_exit);
    MPSCQ_HB_BEFORE(&exit_key_once);
}

/* Reuse a free record, or allocate and publish a new one.  Wait-free:
 * one CAS per existing record at most, then one XCHG. */
static struct mpscq_hp_rec *find_record(struct mpscq *q)
{
    struct mpscq_hp_rec *r;
    /* Acquire, here and on each link: pairs with the publishing XCHG and
     * link store below, so a record's fields are initialized when seen. */
    for (r = atomic_load_explicit(&q->records, memory_order_acquire);
         r && r != MPSCQ_HP_LINKING;
         r = atomic_load_explicit(&r->next, memory_order_acquire)) {
        int expect = 0;
        /* Acquire on success: see the previous owner's release of the
         * record (its spares are gone, hp is NULL).  Relaxed on failure:
         * nothing is read from a record we do not own. */
        if (atomic_load_explicit(&r->active, memory_order_relaxed) == 0) {
            MPSCQ_RMW(1);
            if (atomic_compare_exchange_strong_explicit(&r->active, &expect, 1,
                                                        memory_order_acquire,
                                                        memory_order_relaxed)) {
                MPSCQ_HB_AFTER(&r->active);
                return r;
            }
        }
    }
    r = mpscq_alloc(q, sizeof *r);
    if (!r)
        return NULL;
    memset(r, 0, sizeof *r);
    atomic_init(&r->hp, NULL);
    atomic_init(&r->active, 1);
    atomic_init(&r->next, MPSCQ_HP_LINKING);
    MPSCQ_HG_ATOMIC_VAR(r->hp);
    MPSCQ_HG_ATOMIC_VAR(r->active);
    MPSCQ_HG_ATOMIC_VAR(r->next);
    /* acq_rel XCHG: release publishes r's initialized fields to the
     * consumer's acquire load of q->records; acquire makes the old head's
     * contents visible before we link to it. */
    MPSCQ_RMW(1);
    MPSCQ_HB_BEFORE(&q->records);
    struct mpscq_hp_rec *old = atomic_exchange_explicit(&q->records, r, memory_order_acq_rel);
    MPSCQ_HB_AFTER(&q->records);
    /* Release: a scan that reads the link sees the older records. */
    MPSCQ_HB_BEFORE(&r->next);
    atomic_store_explicit(&r->next, old, memory_order_release);
    return r;
}

struct mpscq_hp_rec *mpscq_hp_acquire_slow(struct mpscq *q)
{
    /* Hit further down the cache: move it to the front. */
    for (int i = 1; i < MPSCQ_TLS_ENTRIES; i++) {
        if (mpscq_tls[i].q == q && mpscq_tls[i].qid == q->qid) {
            struct mpscq_tls_ent e = mpscq_tls[i];
            memmove(&mpscq_tls[1], &mpscq_tls[0], (size_t)i * sizeof e);
            mpscq_tls[0] = e;
            return e.rec;
        }
    }
    pthread_once(&exit_key_once, make_exit_key);
    MPSCQ_HB_AFTER(&exit_key_once);
    struct mpscq_hp_rec *r = find_record(q);
    if (!r)
        return NULL;
    /* Evict the least recently used entry; a stale one (its queue was
     * destroyed) is simply forgotten by drop_entry's liveness check. */
    struct mpscq_tls_ent *last = &mpscq_tls[MPSCQ_TLS_ENTRIES - 1];
    if (last->q)
        drop_entry(last);
    memmove(&mpscq_tls[1], &mpscq_tls[0], (MPSCQ_TLS_ENTRIES - 1) * sizeof *last);
    mpscq_tls[0].q = q;
    mpscq_tls[0].qid = q->qid;
    mpscq_tls[0].rec = r;
    pthread_setspecific(exit_key, (void *)1);
    return r;
}

int mpscq_hp_protected(const struct mpscq *q, const void *seg)
{
    /* Acquire on the head and each link, as in find_record. */
    struct mpscq_hp_rec *r = atomic_load_explicit(&q->records, memory_order_acquire);
    MPSCQ_HB_AFTER(&q->records);
    for (; r; r = atomic_load_explicit(&r->next, memory_order_acquire)) {
        /* A record being pushed hides the older ones for an instant: be
         * conservative and report "protected" (reclamation only waits). */
        if (r == MPSCQ_HP_LINKING)
            return 1;
        MPSCQ_HB_AFTER(&r->next);
        /* seq_cst, after the caller's seq_cst fence that follows the
         * unlink of seg: a producer's XCHG of MPSCQ_HP_ALL is either seen
         * here, or it comes later in the total order and the producer's
         * next read of the entry point sees the unlink (doc/design.md,
         * "Reclamation"). */
        void *v = atomic_load_explicit(&r->hp, memory_order_seq_cst);
        MPSCQ_HB_AFTER(&r->hp);
        if (v == MPSCQ_HP_ALL || v == seg)
            return 1;
    }
    return 0;
}

void mpscq_hp_free_all(struct mpscq *q)
{
    /* Destroy runs alone: relaxed would do; acquire is free and tidy. */
    struct mpscq_hp_rec *r = atomic_load_explicit(&q->records, memory_order_acquire);
    while (r) {
        struct mpscq_hp_rec *next = atomic_load_explicit(&r->next, memory_order_relaxed);
        while (r->spare) {
            struct mpscq_segment *s = r->spare;
            r->spare = atomic_load_explicit(&s->pool_next, memory_order_relaxed);
            mpscq_seg_free(q, s);
        }
        mpscq_free(q, r, sizeof *r);
        r = next;
    }
    atomic_store_explicit(&q->records, NULL, memory_order_relaxed);
}
