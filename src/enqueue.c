/*
 * enqueue.c - the producers' side beyond the fast path: spare segments,
 * walking and linking the list, batches, and the public enqueue calls.
 *
 * doc/design.md s. 2 (wait-freedom) and s. 3 (the hint and the list)
 * explain the algorithm; comments here give the local reason for each
 * memory order.
 */
#include "config.h"

#include <string.h>

#include "arch.h"
#include "capacity.h"
#include "hazard.h"
#include "segment.h"
#include "wait.h"

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
        int pooled = 1;
        /* A producer handle of a preallocated queue takes segments from
         * the pool only: when the pool is dry (producers stopped inside
         * enqueues pin drained segments, design.md s. 5.1) the call is
         * refused as FULL instead of allocating.  A thread's own record
         * (mpscq_enqueue, mpscq_enqueue_wait) allocates as usual. */
        /* Relaxed: kind was set when the handle was made, before the
         * user handed the handle to this thread. */
        int pool_only = q->preallocated &&
                        atomic_load_explicit(&r->kind, memory_order_relaxed) != MPSCQ_REC_SLOT;
        struct mpscq_segment *s = pool_only ? mpscq_seg_pop(q, r) : mpscq_seg_get(q, r, &pooled);
        if (!s)
            return pool_only ? MPSCQ_FULL : MPSCQ_NOMEM;
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
        /* Read before the push: once in the pool, s is another thread's
         * to pop, and the consumer's to free. */
        int fresh = s->id == MPSCQ_SEG_ID_FRESH;
        if (!fresh && !mpscq_seg_give_back(q, s, 2)) {
            /* Still ours: relink it (the attempt overwrote its link). */
            atomic_store_explicit(&s->pool_next, rest, memory_order_relaxed);
            return;
        }
        /* Unlinked before free_fn runs: a free_fn that enqueues on q must
         * not find it among our spares. */
        r->spare = rest;
        r->nspare--;
        if (fresh)
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
            /* As a pooled or fresh segment: Helgrind's declarations too. */
            mpscq_seg_prepare(q, s);
            MPSCQ_TEST_HOOK(MPSCQ_HOOK_SPARE_ALLOCATED, q, 0);
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
    x->base = x->id << q->shift;
    x->prev = s;
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
    _Atomic unsigned char *st = mpscq_slot_state(s, i);
    *mpscq_slot_val(s, i) = msg;
    if (mo == memory_order_release)
        MPSCQ_HB_BEFORE(st);
    atomic_store_explicit(st, (unsigned char)state, mo);
}

/* Finish an enqueue of msgs[0..n-1] at tickets [t, t+n), walking from
 * `start` (protected by r's hazard pointer; the hint read after the
 * ticket).  msgs == NULL: the tickets were refused (bounded, FULL), and
 * their slots are marked MPSCQ_SLOT_SKIP instead. */
static void enqueue_finish_n(struct mpscq *q, struct mpscq_hp_rec *r,
                             void *const *msgs, size_t n, uint64_t t,
                             struct mpscq_segment *start)
{
    uint64_t first_id = t >> q->shift;
    uint64_t last_id = (t + n - 1) >> q->shift;
    struct mpscq_segment *s = start, *first = NULL;
    /* The hint is read after the ticket, so it may already be past our
     * first ticket's segment: walk back along prev.  Every segment from
     * our first ticket's on is kept by that ticket, which stays unhandled
     * until the head store below (design.md s. 4), and prev was written
     * before the segment was linked, which happens before the hint named
     * it (H1). */
    while (s->id > first_id) {
        MPSCQ_TEST_BACK_STEP();
        s = s->prev;
    }
    while (s->id < last_id) {
        if (s->id == first_id)
            first = s;
        s = next_segment(q, r, s);
    }
    if (!first)
        first = s;
    if (s->id > start->id) {
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
    if (!msgs) {
        /* Refused tickets: each slot says SKIP, alone.  Release, so that a
         * consumer that reads the mark reads a state this segment's
         * linker cleared before it (the mark carries no message).  The
         * first ticket's mark comes last, as a batch head does: until
         * then that ticket is unhandled and keeps `first` and every later
         * segment from being recycled (the hazard names `start`, which may
         * be past `first`), and nothing is read after it.  Marked first,
         * it let the consumer recycle `first` while we still walked from
         * it (test_refused_batch_after_walk_back). */
        struct mpscq_segment *w = first;
        for (size_t k = 1; k <= n; k++) {
            uint64_t tk = k < n ? t + k : t;
            if (k == n)
                w = first;
            while (w->id != (tk >> q->shift)) {
                struct mpscq_segment *prev = w;
                w = atomic_load_explicit(&prev->next, memory_order_acquire);
                MPSCQ_HB_AFTER(&prev->next);
            }
            _Atomic unsigned char *st = mpscq_slot_state(w, (size_t)(tk & q->mask));
            MPSCQ_HB_BEFORE(st);
            atomic_store_explicit(st, MPSCQ_SLOT_SKIP, memory_order_release);
            MPSCQ_TEST_HOOK(MPSCQ_HOOK_SKIP_MARKED, q, tk);
        }
        /* Release: our reads of the segments are done. */
        MPSCQ_HB_BEFORE(&r->hp);
        atomic_store_explicit(&r->hp, NULL, memory_order_release);
        /* A consumer asleep after a close waits for these tickets too. */
        mpscq_notify(q);
        return;
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
            /* Segment by segment: the run of tickets each one holds. */
            for (size_t k = 1; k < n;) {
                uint64_t tk = t + k;
                while (w->id != (tk >> q->shift)) {
                    struct mpscq_segment *prev = w;
                    w = atomic_load_explicit(&prev->next, memory_order_acquire);
                    MPSCQ_HB_AFTER(&prev->next);
                }
                size_t i = (size_t)(tk & q->mask);
                size_t cnt = q->nslots - i < n - k ? q->nslots - i : n - k;
                struct mpscq_slot_cur c = mpscq_slot_at(w, i);
                if (pass == 0) {
                    for (size_t j = 0; j < cnt; j++, mpscq_cur_next(&c))
                        atomic_store_explicit(mpscq_cur_state(&c),
                                              (unsigned char)(MPSCQ_SLOT_READY | MPSCQ_SLOT_FOLLOWS |
                                                              (k + j + 1 < n ? MPSCQ_SLOT_CONT : 0)),
                                              memory_order_relaxed);
                } else {
                    for (size_t j = 0; j < cnt; j++, mpscq_cur_next(&c))
                        *mpscq_cur_val(&c) = msgs[k + j];
                }
                k += cnt;
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


/* Everything an enqueue of n messages needs before its ticket: the
 * thread's record r (NULL when registering it failed), in a bounded queue
 * room for n by the check that takes no ticket (*admit: the admission
 * bound, MPSCQ_ADMIT_ALL when unbounded), and n / N + 1 spare segments.
 * FULL and closure are decided before anything is allocated, and a call
 * that fails gives back the spares it took beyond the one a record
 * keeps. */
static int enqueue_prepare(struct mpscq *q, struct mpscq_hp_rec *r, size_t n, uint64_t *admit)
{
    if (MPSCQ_UNLIKELY(!r)) {
        MPSCQ_STAT_ADD(q, st_nomem, 1);
        return MPSCQ_NOMEM;
    }
    *admit = MPSCQ_ADMIT_ALL;
    if (q->capacity) {
        int rc = mpscq_admit_check(q, r, n, admit);
        if (rc != MPSCQ_OK)
            return rc;
    }
    size_t need = (n >> q->shift) + 1;
    if (MPSCQ_LIKELY(r->nspare >= need))
        return MPSCQ_OK;
    /* Relaxed: the closed bit, and a lower bound of our ticket; the
     * ticket's XADD decides for real.  This saves allocating for a call
     * that cannot succeed (a refused one would keep its spares). */
    uint64_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    if (tail & MPSCQ_TAIL_CLOSED) {
        MPSCQ_STAT_ADD(q, st_closed, 1);
        return MPSCQ_CLOSED;
    }
    if (tail + n > *admit) {
        MPSCQ_STAT_ADD(q, st_full, 1);
        return MPSCQ_FULL;
    }
    int rc = ensure_spares(q, r, need);
    if (rc != MPSCQ_OK) {
        spares_trim(q, r, 1);
        if (rc == MPSCQ_FULL)
            MPSCQ_STAT_ADD(q, st_full, 1);
        else
            MPSCQ_STAT_ADD(q, st_nomem, 1);
        return rc;
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

/* The continuation of n tickets from `ticket` on that failed the
 * admission compare, with the hazard still ALL: the queue is closed (bit
 * 63: nothing was taken), or the tickets were refused (bounded, FULL:
 * count them, read the hint as the fast path does and mark their slots;
 * design.md s. 6). */
int mpscq_enqueue_refused(struct mpscq *q, struct mpscq_hp_rec *r, uint64_t ticket,
                          uint64_t n)
{
    if (ticket & MPSCQ_TAIL_CLOSED) {
        /* Release: nothing was read under the hazard; nothing is kept. */
        MPSCQ_HB_BEFORE(&r->hp);
        atomic_store_explicit(&r->hp, NULL, memory_order_release);
        MPSCQ_STAT_ADD(q, st_closed, 1);
        return MPSCQ_CLOSED;
    }
    mpscq_reject_count(q, r, ticket, n);
    /* seq_cst after the ticket, then the narrowing: steps 3 and 4 of the
     * fast path (fastpath.c), with the same argument (design.md s. 4). */
    struct mpscq_segment *s = atomic_load_explicit(&q->hint, memory_order_seq_cst);
    MPSCQ_HB_AFTER(&q->hint);
    atomic_store_explicit(&r->hp, s, memory_order_release);
    enqueue_finish_n(q, r, NULL, n, ticket, s);
    return MPSCQ_FULL;
}

/* First enqueue of this thread on q, no spare, or no room. */
__attribute__((noinline)) int mpscq_enqueue_prepared(struct mpscq *q, struct mpscq_hp_rec *r,
                                                     void *msg)
{
    uint64_t admit;
    int rc = enqueue_prepare(q, r, 1, &admit);
    if (MPSCQ_UNLIKELY(rc != MPSCQ_OK))
        return rc;
    return mpscq_fast_enqueue(q, r, msg, admit);
}

/* Everything but the common case: the record looked up or registered,
 * a spare refilled, FULL or CLOSED without a ticket. */
__attribute__((noinline)) int mpscq_enqueue_slow(struct mpscq *q, void *msg)
{
    return mpscq_enqueue_prepared(q, mpscq_hp_acquire(q), msg);
}

/* The public call is the entry routine arch.h binds: in the installed
 * asm library the NASM entry itself, exported under this name
 * (asm/x86_64/public.asm); in the test and C-twin libraries this wrapper
 * (one jump); in a C build this C one, then named mpscq_enqueue itself. */
#ifdef MPSCQ_ENTRIES_DISPATCHED
#ifndef MPSCQ_ASM_PUBLIC_ENTRIES
int mpscq_enqueue(mpscq_t *q, void *msg)
{
    return mpscq_enqueue_entry(q, msg);
}
#endif
#define MPSCQ_ENQUEUE_C mpscq_enqueue_entry_base
#else
#define MPSCQ_ENQUEUE_C mpscq_enqueue
#endif

int MPSCQ_ENQUEUE_C(mpscq_t *q, void *msg)
{
    if (MPSCQ_UNLIKELY(!q))
        return MPSCQ_INVAL;
    /* The common case without a stack frame: this thread's cached record
     * for q, holding a spare (hazard.h), then a tail call of the fast
     * path.  Anything else goes to enqueue_slow. */
    if (MPSCQ_LIKELY(mpscq_tls.q == q && mpscq_tls.qid == q->qid)) {
        struct mpscq_hp_rec *r = mpscq_tls.rec;
        if (MPSCQ_LIKELY(r->spare != NULL)) {
            if (!q->capacity)
                return mpscq_fast_enqueue(q, r, msg, MPSCQ_ADMIT_ALL);
            uint64_t admit = mpscq_admit(q);
            if (MPSCQ_LIKELY(r->seen + 1 <= admit))
                return mpscq_fast_enqueue(q, r, msg, admit);
        }
    }
    return mpscq_enqueue_slow(q, msg);
}

int mpscq_enqueue_batch_check(struct mpscq *q, size_t n)
{
    /* More than the capacity can never be admitted: a bad argument, not
     * FULL, or the documented retry-on-FULL loop would spin forever. */
    if (q->capacity && n > q->capacity)
        return MPSCQ_INVAL;
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
    uint64_t admit;
    int rc = enqueue_prepare(q, r, n, &admit);
    if (rc != MPSCQ_OK)
        return rc;
    struct mpscq_segment *s = NULL;
    uint64_t t = mpscq_fast_reserve(q, r, n, admit, &s);
    if (t + n > admit) {
        /* Closed (nothing kept), or refused, all n (design.md s. 6). */
        rc = mpscq_enqueue_refused(q, r, t, n);
        if (rc == MPSCQ_CLOSED)
            spares_trim(q, r, 1);
        return rc;
    }
    enqueue_finish_n(q, r, msgs, n, t, s);
    return MPSCQ_OK;
}
