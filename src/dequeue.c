/*
 * dequeue.c - the single consumer: the slow path behind the fast one
 * (passed tickets, batches, close), and the public dequeue calls.
 *
 * doc/design.md s. 8 explains the algorithm; comments here give the
 * local reason for each memory order.
 */
#include "config.h"

#include <string.h>

#include "arch.h"
#include "capacity.h"
#include "consumer.h"
#include "consumers.h"
#include "segment.h"

static inline unsigned slot_state(const struct mpscq *q, struct mpscq_segment *s, uint64_t idx)
{
    /* Acquire: pairs with the producer's release store of the state. */
    return atomic_load_explicit(mpscq_slot_state(s, (size_t)(idx & q->mask)),
                                memory_order_acquire);
}

static inline int takeable(unsigned st)
{
    return (st & (MPSCQ_SLOT_READY | MPSCQ_SLOT_FOLLOWS | MPSCQ_SLOT_TAKEN)) == MPSCQ_SLOT_READY;
}

/* A refused ticket (bounded, FULL), not yet passed: handled like a take
 * that yields no message (design.md s. 6). */
static inline int refused(unsigned st)
{
    return (st & (MPSCQ_SLOT_SKIP | MPSCQ_SLOT_TAKEN)) == MPSCQ_SLOT_SKIP;
}

/* Something the consumer can handle now: a message or a refused ticket. */
static inline int handleable(unsigned st)
{
    return takeable(st) || refused(st);
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
    if (q->npend + extra > UINT32_MAX)
        return 0; /* npend is 32 bits (the gate, internal.h): as out of memory */
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


/* One message handed to the caller: counted, its place freed. */
void mpscq_count_dequeue(struct mpscq *q)
{
    /* Release: a producer waiting for a place reads it with acquire and
     * admits against it (enqueue_wait.c); the relaxed load is of the
     * consumer's own store. */
    atomic_store_explicit(&q->dequeued, atomic_load_explicit(&q->dequeued, memory_order_relaxed) + 1,
                          memory_order_release);
    mpscq_release_one(q);
}

/* Ticket idx (state st) is handled: a message taken, or a refused ticket
 * passed (which counts as no dequeue: its place was never taken).  A
 * take for mpscq_peek is counted when the message is delivered. */
static void after_take(struct mpscq *q, uint64_t idx, unsigned st)
{
    q->head = q->npend ? q->pend[0].idx : q->scan;
    if (!(st & MPSCQ_SLOT_SKIP)) {
        q->last = idx;
        q->last_cont = (int)(st & MPSCQ_SLOT_CONT);
        if (!q->peeking)
            mpscq_count_dequeue(q);
    }
    mpscq_seg_maybe_reclaim(q);
}

static void take_scan(struct mpscq *q, struct mpscq_segment *s, unsigned st, void **msg)
{
    uint64_t idx = q->scan;
    MPSCQ_HB_AFTER(mpscq_slot_state(s, (size_t)(idx & q->mask)));
    if (!(st & MPSCQ_SLOT_SKIP))
        *msg = *mpscq_slot_val(s, (size_t)(idx & q->mask));
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
    return (atomic_load_explicit(mpscq_slot_state(s, (size_t)(t & q->mask)),
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
    _Atomic unsigned char *sv = mpscq_slot_state(s, (size_t)(t & q->mask));
    MPSCQ_HB_AFTER(sv);
    if (!(st & MPSCQ_SLOT_SKIP))
        *msg = *mpscq_slot_val(s, (size_t)(t & q->mask));
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
        atomic_store_explicit(sv, (unsigned char)(st | MPSCQ_SLOT_TAKEN),
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

/* Lazy passing: a short stretch of unwritten tickets at the scan point,
 * with nothing takeable behind it, is left as it is instead of being
 * recorded as passed.  It is usually a producer between its ticket and
 * its slot write, a few instructions from done; passing it would send
 * every following dequeue through the passed set.  Longer stretches (an
 * overtaken batch) are passed at once, as before: re-reading them on
 * every poll would cost their length each time (design.md s. 8). */
#define MPSCQ_LAZY_PASS 32

/* 1 when some ticket in [from, to) can be handled now (a message or a
 * refused ticket; acquire loads, as every slot read); stops at a segment
 * not linked yet. */
static int lookahead(struct mpscq *q, uint64_t from, uint64_t to)
{
    struct mpscq_segment *s = q->scan_seg;
    for (uint64_t t = from; t < to; t++) {
        if ((t >> q->shift) != s->id) {
            /* Acquire: the linker's id and cleared states. */
            struct mpscq_segment *n = atomic_load_explicit(&s->next, memory_order_acquire);
            if (!n)
                return 0;
            MPSCQ_HB_AFTER(&s->next);
            s = n;
        }
        MPSCQ_PEND_WORK(1);
        if (handleable(slot_state(q, s, t)))
            return 1;
    }
    return 0;
}

/* Nothing is passed and the fast path found the slot at scan not ready.
 * When that ticket is issued (the cached limit says so, or one fresh load
 * of tail does), its producer is almost always a few instructions from
 * writing it: give it MPSCQ_CATCH_UP_NS, touching nothing it writes, then
 * look once more.  Polling its lines meanwhile, or re-reading tail, would
 * slow the very producer we wait for: a consumer that catches up with a
 * producer otherwise reads the ticket counter and the slot's lines once or
 * twice per message while they are being written (1P1C went from 3-4 to
 * 30-60 million messages/s on the 2-vCPU machine, doc/performance.md).
 * Bounded: a stopped producer costs each such call this much, then the
 * normal path passes its ticket or says EMPTY (design.md s. 8). */
static int catch_up(struct mpscq *q, void **msg)
{
    if (q->limit <= q->scan)
        refresh_limit(q);
    if (q->scan >= q->limit)
        return 0;   /* nothing issued: EMPTY at once, no spin */
    struct mpscq_segment *s = scan_segment(q);
    if (!s)
        return 0;
    mpscq_spin_ns(MPSCQ_CATCH_UP_NS);
    unsigned st = slot_state(q, s, q->scan);
    if (refused(st)) {
        take_scan(q, s, st, msg); /* passed; the caller goes on */
        return 0;
    }
    if (!takeable(st))
        return 0;
    take_scan(q, s, st, msg);
    return 1;
}

/* Take the oldest passed ticket that is takeable now, if any (1). */
static int take_passed(struct mpscq *q, void **msg)
{
again:
    for (size_t i = 0; i < q->npend; i++) {
        struct mpscq_pending *e = &q->pend[i];
        uint64_t end = e->idx + e->n;
        /* The front: a batch head, a single message, or a hole. */
        struct mpscq_segment *s = e->seg;
        MPSCQ_PEND_WORK(1);
        unsigned st = slot_state(q, s, e->idx);
        if (handleable(st)) {
            take_pend(q, i, e->idx, s, st, msg);
            if (refused(st))
                goto again; /* the runs changed; refused tickets are rare */
            return 1;
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
            if (handleable(st)) {
                take_pend(q, i, t, s, st, msg);
                if (refused(st))
                    goto again;
                return 1;
            }
        }
    }
    return 0;
}

int mpscq_dequeue_slow(struct mpscq *q, void **msg)
{
    if (MPSCQ_UNLIKELY(q->peeked)) {
        /* mpscq_peek took it; it is dequeued now. */
        *msg = q->peek_msg;
        q->peeked = 0;
        mpscq_count_dequeue(q);
        return MPSCQ_OK;
    }
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

    if (!q->npend) {
        if (catch_up(q, msg))
            return MPSCQ_OK;
    } else if (q->scan < q->limit) {
        /* Tickets are passed and the next one in order is issued (the
         * cached limit says so).  When it is written it is the candidate:
         * read it first, then the passed ones.  An enqueue that returned
         * before the candidate's began wrote its slot before that
         * enqueue's ticket, so it reads as written after this acquire
         * load, as it would after a fresh load of tail (design.md s. 8):
         * no load of the producers' ticket line for it. */
        struct mpscq_segment *s = scan_segment(q);
        if (s) {
            unsigned st = slot_state(q, s, q->scan);
            if (takeable(st)) {
                if (!take_passed(q, msg))
                    take_scan(q, s, st, msg);
                return MPSCQ_OK;
            }
            if (refused(st))
                take_scan(q, s, st, msg); /* passed; go on below */
        }
    }
    refresh_limit(q);
    /* Passed slots first, oldest first, then new ones: the first written
     * slot in ticket order is the one to take. */
    if (take_passed(q, msg))
        return MPSCQ_OK;
    MPSCQ_TEST_HOOK(MPSCQ_HOOK_CONSUMER_SCAN, q, q->scan);
    if (q->scan < q->limit && q->limit - q->scan <= MPSCQ_LAZY_PASS &&
        !lookahead(q, q->scan, q->limit))
        goto empty;
    while (q->scan < q->limit) {
        struct mpscq_segment *s = scan_segment(q);
        if (!s)
            break;
        unsigned st = slot_state(q, s, q->scan);
        if (takeable(st)) {
            take_scan(q, s, st, msg);
            return MPSCQ_OK;
        }
        if (refused(st)) {
            take_scan(q, s, st, msg);
            continue;
        }
        /* Not written yet (its producer is between ticket and write),
         * or a batch interior whose head is not written yet. */
        if (!pend_push(q, s, q->scan))
            break;
        q->scan++;
    }
empty:
    /* Nothing to take: every place the consumer freed goes back now,
     * before any free (a producer waiting for a place does not wait for
     * munmap) ... */
    mpscq_release_flush(q);
    mpscq_seg_maybe_reclaim(q);
    /* ... and the second time in a row with no ticket issued in between
     * (the queue is idle, not just caught up), the pool goes back to its
     * idle bound; caught up, it eases towards its caught-up bound
     * (segment.h). */
    if (q->limit == q->idle_limit)
        mpscq_seg_pool_trim(q, mpscq_pool_keep(q));
    else
        mpscq_seg_pool_ease(q);
    q->idle_limit = q->limit;
    if (q->closed_seen && q->npend == 0 && q->scan >= q->limit)
        return MPSCQ_CLOSED;
    return MPSCQ_EMPTY;
}

/* 1 when a dequeue by the queue's consumer would find nothing and have
 * nothing to do: no ticket issued past head (a producer's fetch-and-add,
 * a refused ticket and the close bit all move tail), nothing passed or
 * peeked, no dequeue left to publish, no segment to recycle and the pool
 * within its idle bound (the work an EMPTY dequeue does, dequeue.c).
 * t is the caller's load of q->tail.  For queue sets (set.c), whose
 * thread is the consumer and has been inside a consumer call of q: it
 * reads the consumer's fields without entering.  A true answer is an
 * EMPTY linearized at the caller's load of tail. */
int mpscq_dequeue_idle(struct mpscq *q, uint64_t t)
{
    return t == q->head && q->gate == 0 && q->release_debt == 0 && !mpscq_seg_reclaimable(q) &&
           /* Relaxed: a hint; over the bound, the dequeue trims. */
           atomic_load_explicit(&q->pool_count, memory_order_relaxed) <= mpscq_pool_keep(q);
}

/* The fast path's continuation after it took the last slot of a segment. */
int mpscq_dequeue_crossed(struct mpscq *q)
{
    mpscq_seg_maybe_reclaim(q);
    return MPSCQ_OK;
}

/* The mpscq_dequeue entries' continuations (fastpath.c, dequeue.asm):
 * as the two above, then the call is left (consumer.h). */
int mpscq_dequeue_slow_out(struct mpscq *q, void **msg)
{
    int rc = mpscq_dequeue_slow(q, msg);
    mpscq_consumer_exit();
    return rc;
}

int mpscq_dequeue_crossed_out(struct mpscq *q)
{
    int rc = mpscq_dequeue_crossed(q);
    mpscq_consumer_exit();
    return rc;
}

/* The entry's check failed (a first call, a new consumer thread, a queue
 * without membarrier, or another thread inside): the slow check, then the
 * whole dequeue. */
int mpscq_dequeue_enter(struct mpscq *q, void **msg)
{
    if (q->many) {
        /* Many consumers (consumers.c): the entry's mark says nothing. */
        mpscq_consumer_exit();
        return mpscq_many_dequeue(q, msg);
    }
    int rc = mpscq_consumer_enter_slow(q);
    if (rc != MPSCQ_OK)
        return rc;
    rc = mpscq_dequeue_in(q, msg);
    mpscq_consumer_exit();
    return rc;
}

/* As mpscq_enqueue (enqueue.c): the public call is the entry arch.h
 * binds, the NASM one or the C one (fastpath.c); in the installed asm
 * library the NASM entry itself (asm/x86_64/public.asm). */
#if defined(MPSCQ_ENTRIES_DISPATCHED) && !defined(MPSCQ_ASM_PUBLIC_ENTRIES)
int mpscq_dequeue(mpscq_t *q, void **msg)
{
    return mpscq_dequeue_entry(q, msg);
}
#endif

/* The bulk fast path: with nothing passed, take the run of written slots
 * from scan on, within scan's segment, up to max; 0 when the slot at scan
 * is not written (or scan is not in scan_seg).  The same reasoning as the
 * single fast path (fastpath.c): every ticket below scan is handled, so
 * each slot is the next in order, and a FOLLOWS slot is the continuation
 * of the one taken just before it. */
static size_t take_run(struct mpscq *q, void **msgs, size_t max)
{
    struct mpscq_segment *s = q->scan_seg;
    uint64_t idx = q->scan;
    if (q->gate || (idx >> q->shift) != s->id)
        return 0;
    size_t i = (size_t)(idx & q->mask);
    size_t room = q->nslots - i;
    if (max > room)
        max = room;
    size_t k = 0;
    unsigned v = 0;
    for (struct mpscq_slot_cur c = mpscq_slot_at(s, i); k < max; k++, mpscq_cur_next(&c)) {
        _Atomic unsigned char *st = mpscq_cur_state(&c);
        /* Acquire: pairs with each producer's release store of the state. */
        unsigned x = atomic_load_explicit(st, memory_order_acquire);
        if ((x & (MPSCQ_SLOT_READY | MPSCQ_SLOT_SKIP)) != MPSCQ_SLOT_READY)
            break;
        MPSCQ_HB_AFTER(st);
        msgs[k] = *mpscq_cur_val(&c);
        v = x;
    }
    if (!k)
        return 0;
    q->scan = q->head = idx + k;
    q->last = idx + k - 1;
    q->last_cont = (int)(v & MPSCQ_SLOT_CONT);
    /* Release: as in after_take (a waiting producer admits against it). */
    atomic_store_explicit(&q->dequeued, atomic_load_explicit(&q->dequeued, memory_order_relaxed) + k,
                          memory_order_release);
    if (q->capacity) {
        /* Published once a batch's worth is owed, all of it (released is
         * absolute: capacity.h), then a waiting producer woken. */
        q->release_debt += k;
        if (q->release_debt >= q->release_batch)
            mpscq_release_flush(q);
        mpscq_space_check(q);
    }
    if (((idx + k) & q->mask) == 0)
        mpscq_seg_maybe_reclaim(q);
    return k;
}

size_t mpscq_dequeue_batch_in(struct mpscq *q, void **msgs, size_t max)
{
    size_t n = 0;
    while (n < max) {
        size_t k = take_run(q, msgs + n, max - n);
        if (k) {
            n += k;
            continue;
        }
        /* Not in order, not written, a segment boundary, or a refused
         * ticket: one dequeue through the general path. */
        if (mpscq_dequeue_in(q, &msgs[n]) != MPSCQ_OK)
            break;
        n++;
    }
    return n;
}

size_t mpscq_dequeue_batch(mpscq_t *q, void **msgs, size_t max)
{
    if (!q || !msgs || !max)
        return 0;
    if (q->many)
        return mpscq_many_dequeue_batch(q, msgs, max);
    /* BUSY or NOMEM: nothing taken (mpscq_dequeue_batch_wait says which). */
    if (mpscq_consumer_enter(q) != MPSCQ_OK)
        return 0;
    size_t n = mpscq_dequeue_batch_in(q, msgs, max);
    mpscq_consumer_exit();
    return n;
}
