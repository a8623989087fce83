/*
 * consumers.c - the many-consumer mode (mpscq_config.consumers =
 * MPSCQ_CONSUMERS_MANY): any number of threads dequeue at once, and each
 * message goes to exactly one of them, by a compare-and-swap claim of its
 * slot's state byte.  Producers are unchanged.
 *
 * doc/design.md s. 16 gives the argument; comments here give the local
 * reason for each memory order.  In short:
 *
 *  - chead: every ticket below it is taken or refused.  A dequeue reads
 *    the states from chead up to the issued tickets, passes the ones
 *    taken or refused and the ones not written yet (a producer between
 *    its ticket and its write: nobody waits for it), and claims the first
 *    takeable one: CAS of its state from the value read to value|TAKEN.
 *    A lost CAS means another consumer took that message: back off and
 *    go on with the next ticket (lock-free).
 *  - Per-producer order, per consumer: a scan looks only below a limit
 *    its thread loaded from tail (acquire) before it read the tickets it
 *    passes; when it reloads the limit midway it reads them again.  A
 *    producer writes a message before it takes its next ticket, so an
 *    earlier message of the candidate's producer reads as written: the
 *    candidate is never taken past it.  A batch's interior is takeable
 *    only once its predecessor is taken.
 *  - A claim is final: nothing is put back, so a consumer stopped between
 *    its claim and its return holds its own message and nothing else.
 *  - Reclamation: each dequeue names the consumers' entry segment (cseg)
 *    in its record's hpc; one consumer at a time (the `reclaiming` flag)
 *    recycles the segments below chead, after the hazard scan that also
 *    covers producers (hazard.c).
 */
#include "config.h"

#include <time.h>

#include "arch.h"
#include "capacity.h"
#include "consumer.h"
#include "consumers.h"
#include "hazard.h"
#include "segment.h"
#include "wait.h"

/* Inside a many-consumer call: a log_fn, alloc_fn or free_fn that calls
 * back into one is MPSCQ_BUSY (the record's hpc has one owner call at a
 * time).  IN_CALL at the call's entry, IN_CALL_YIELDED once its first
 * take stood aside for a hot consumer, or found none: the call's later
 * takes (a batch, a wait's spinning) do not stand aside again. */
enum { IN_CALL = 1, IN_CALL_YIELDED };
static _Thread_local int in_many;

/* A take moves chead once it is this far behind (many_take). */
#define MPSCQ_CHEAD_STEP 16u

/* What a dequeue can do with a ticket. */
enum { T_DONE, T_TAKE, T_WAIT };

static inline unsigned load_state(const struct mpscq *q, struct mpscq_segment *s, uint64_t t)
{
    /* Acquire: pairs with the producer's release store of the state (a
     * message's value), and with a claimer's acq_rel CAS (TAKEN: what it
     * had acquired, a batch's interior among it). */
    _Atomic unsigned char *a = mpscq_slot_state(s, (size_t)(t & q->mask));
    unsigned st = atomic_load_explicit(a, memory_order_acquire);
    /* Helgrind: the edge from whoever stored it (a producer's release, a
     * claimer's CAS), which a batch interior's take and chead rely on. */
    MPSCQ_HB_AFTER(a);
    return st;
}

/* A refused ticket (SKIP) and a taken one are done.  A batch interior
 * (FOLLOWS) is takeable once its predecessor is taken (pred_done): its
 * batch head was written, after the interior, and someone acquired it. */
static inline int classify(unsigned st, int pred_done)
{
    if (st & (MPSCQ_SLOT_TAKEN | MPSCQ_SLOT_SKIP))
        return T_DONE;
    if (!(st & MPSCQ_SLOT_READY))
        return T_WAIT;
    if ((st & MPSCQ_SLOT_FOLLOWS) && !pred_done)
        return T_WAIT;
    return T_TAKE;
}

/* Name the consumers' entry segment in r->hpc, validated: that segment
 * and every later one stay allocated until hpc changes. */
static struct mpscq_segment *protect(struct mpscq *q, struct mpscq_hp_rec *r)
{
    /* Relaxed: the seq_cst re-read below is the one used. */
    struct mpscq_segment *s = atomic_load_explicit(&q->cseg, memory_order_relaxed);
    for (;;) {
        /* seq_cst: the store of the Dekker pair with the recycler (its
         * store of cseg, fence, scan of hpc).  Either the scan sees s, or
         * this re-read sees the recycler's new cseg.  A retry means a
         * recycler made progress (lock-free). */
        atomic_store_explicit(&r->hpc, s, memory_order_seq_cst);
        /* seq_cst: see above; it also acquires the segment's id and base,
         * written before the segment was linked. */
        struct mpscq_segment *n = atomic_load_explicit(&q->cseg, memory_order_seq_cst);
        if (n == s) {
            MPSCQ_HB_AFTER(&q->cseg);
            return s;
        }
        s = n;
    }
}

static inline void unprotect(struct mpscq_hp_rec *r)
{
    MPSCQ_HB_BEFORE(&r->hpc);
    /* Release: our reads of the segment happen before a recycler that
     * sees NULL reuses it. */
    atomic_store_explicit(&r->hpc, NULL, memory_order_release);
}

/* Tickets below the value returned are issued; *final when it is the
 * close ticket (no ticket at or past it will ever be written). */
static uint64_t load_limit(struct mpscq *q, int *final)
{
    /* Acquire, before any slot of the scan: an enqueue that returned
     * before some ticket below the limit was taken has its slot written
     * in this scan (linearizability, design.md s. 8 and 16). */
    uint64_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
    *final = 0;
    if (!(t & MPSCQ_TAIL_CLOSED))
        return t;
    /* seq_cst: pairs with mpscq_close's store (design.md s. 7). */
    uint64_t ct = atomic_load_explicit(&q->close_ticket, memory_order_seq_cst);
    if (ct != MPSCQ_TICKET_UNSET) {
        *final = 1;
        return ct;
    }
    /* mpscq_close is between its two steps: the tickets past the close
     * ticket are never written, so they read as not written (EMPTY); a
     * many consumer's cursor may pass them as holes, and forgets them
     * once it reads the close ticket (close_trim). */
    return t & ~MPSCQ_TAIL_CLOSED;
}

/* Every ticket in [from, to) is taken or refused: chead may pass them.
 * Never backwards. */
static void advance_chead(struct mpscq *q, uint64_t from, uint64_t to)
{
    uint64_t cur = from;
    MPSCQ_HB_BEFORE(&q->chead);
    /* Release on success: a consumer that acquires chead then reads the
     * states below it as done (a batch interior at chead is takeable), and
     * the recycler may recycle what lies below.  Relaxed on failure: cur
     * is only compared. */
    while (cur < to && !atomic_compare_exchange_weak_explicit(&q->chead, &cur, to,
                                                              memory_order_release,
                                                              memory_order_relaxed))
        ;
}

/* Raise `released` to d (bounded mode), never lowering it: the same rule
 * as a waiting producer's pull (enqueue_wait.c), so released is always
 * a value `dequeued` had (capacity.h). */
static void raise_released(struct mpscq *q, uint64_t d)
{
    /* Relaxed: the CAS checks it. */
    uint64_t r = atomic_load_explicit(&q->released, memory_order_relaxed);
    /* Release: the dequeues counted in d (our acq_rel increment read them
     * all) happen before a producer's acquire in mpscq_admit. */
    while (r < d && !atomic_compare_exchange_weak_explicit(&q->released, &r, d,
                                                           memory_order_release,
                                                           memory_order_relaxed))
        MPSCQ_RMW(1);
}

static void count_take(struct mpscq *q, struct mpscq_hp_rec *r)
{
    if (!q->capacity) {
        /* Unbounded: only mpscq_stats and mpscq_size read the count, so
         * each thread keeps its own in its record (no shared line written
         * per message).  Relaxed load and store: the owner is the only
         * writer; readers sum them (mpscq_hp_sum_dequeued). */
        atomic_store_explicit(&r->cdeq, atomic_load_explicit(&r->cdeq, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        return;
    }
    /* Bounded: acq_rel RMW, one total count of every consumer's takes,
     * each increment acquiring the earlier ones (raise_released publishes
     * them); release for a waiting producer's acquire load. */
    uint64_t d = atomic_fetch_add_explicit(&q->dequeued, 1, memory_order_acq_rel) + 1;
    MPSCQ_RMW(1);
    /* Published once per release_batch takes of all consumers, and
     * whenever one finds nothing (many_take): FULL may be seen with up
     * to release_batch - 1 places free, plus one per consumer between its
     * increment and this test (design.md s. 16). */
    if (d % q->release_batch == 0)
        raise_released(q, d);
    mpscq_space_check(q);
}

/* One consumer at a time recycles: move cseg up to chead's segment, then
 * recycle the segments before it that no hazard names.  A consumer that
 * finds the flag taken skips (recycling is optional work, so the dequeue
 * stays lock-free); one stopped holding it delays recycling only.
 * Then the pool: RECLAIM_IDLE back to its idle bound, RECLAIM_CAUGHT_UP
 * eased towards its caught-up bound (segment.h), RECLAIM_BUSY left as it is
 * (a consumer in the middle of a backlog frees nothing). */
enum { RECLAIM_BUSY, RECLAIM_CAUGHT_UP, RECLAIM_IDLE };
static void try_reclaim(struct mpscq *q, int mode)
{
    int z = 0;
    /* Relaxed pre-check, then acquire on the flag: the previous holder's
     * oldest, cseg and pool work (its release store). */
    if (atomic_load_explicit(&q->reclaiming, memory_order_relaxed) ||
        !atomic_compare_exchange_strong_explicit(&q->reclaiming, &z, 1, memory_order_acquire,
                                                 memory_order_relaxed))
        return;
    MPSCQ_RMW(1);
    MPSCQ_HB_AFTER(&q->reclaiming);
    /* Acquire: the advancers' release CAS (their reads of the states). */
    uint64_t c = atomic_load_explicit(&q->chead, memory_order_acquire);
    MPSCQ_HB_AFTER(&q->chead);
    MPSCQ_TEST_HOOK(MPSCQ_HOOK_MANY_RECLAIM, q, c);
    /* Relaxed: only the flag's holder stores it. */
    struct mpscq_segment *old = atomic_load_explicit(&q->cseg, memory_order_relaxed);
    struct mpscq_segment *s = old;
    while (s->id < (c >> q->shift)) {
        /* Acquire: the linker's id and cleared states. */
        struct mpscq_segment *n = atomic_load_explicit(&s->next, memory_order_acquire);
        if (!n)
            break;
        MPSCQ_HB_AFTER(&s->next);
        s = n;
    }
    if (s != old) {
        MPSCQ_HB_BEFORE(&q->cseg);
        /* seq_cst: the unlink of the segments before s from the
         * consumers' entry point precedes the hazard scan (protect). */
        atomic_store_explicit(&q->cseg, s, memory_order_seq_cst);
    }
    /* Every ticket of a segment before s is below chead: drained.  s was
     * reached from oldest through next, so each has a successor. */
    while (q->oldest != s)
        if (!mpscq_seg_recycle_oldest(q))
            break;
    /* Relaxed: a hint for reclaim_due. */
    atomic_store_explicit(&q->reclaim_left, q->oldest != s, memory_order_relaxed);
    if (mode == RECLAIM_IDLE)
        mpscq_seg_pool_trim(q, mpscq_pool_keep(q));
    else if (mode == RECLAIM_CAUGHT_UP)
        mpscq_seg_pool_ease(q);
    MPSCQ_HB_BEFORE(&q->reclaiming);
    /* Release: our work before the next holder's acquire. */
    atomic_store_explicit(&q->reclaiming, 0, memory_order_release);
}

/* An EMPTY dequeue's test, before it takes the recycler's flag: chead
 * is past cseg's segment, the last recycling left some, or the pool is
 * over its idle bound (idle) or its caught-up bound (not idle).  Relaxed
 * loads but cseg's: hints; the flag's holder decides.  The caller's
 * hazard protects cseg (it is at or after hpc). */
static int reclaim_due(struct mpscq *q, uint64_t c, int idle)
{
    /* Acquire: the segment's id, written by its linker before the
     * recycler reached it (pairs with the recycler's store). */
    struct mpscq_segment *cs = atomic_load_explicit(&q->cseg, memory_order_acquire);
    MPSCQ_HB_AFTER(&q->cseg);
    return (c >> q->shift) > cs->id ||
           atomic_load_explicit(&q->reclaim_left, memory_order_relaxed) ||
           atomic_load_explicit(&q->pool_count, memory_order_relaxed) >
               (idle ? mpscq_pool_keep(q) : mpscq_pool_high(q));
}

/* What this thread knows of a queue's tickets, kept between its calls
 * (design.md s. 16, "The private cursor"): every ticket in [chead, pos)
 * is done but those in the holes, ranges of tickets it passed not done
 * (a stopped batch is one range).  A claim or a
 * refusal is final, so what was done stays done, and nothing at or past
 * chead is recycled; the holes are read again in every scan.  Without it
 * a producer stopped between ticket and write would make every dequeue
 * read every state from chead (where it holds chead) onwards: a burst of
 * N messages behind it cost N*N/2 state reads.  A thread keeps
 * MPSCQ_CURSORS of them, for the queues it used last: a call on a fifth
 * queue takes the least recently used one and starts over from chead
 * (always correct, only slower). */
#define MPSCQ_CHOLES 8
struct many_pos {
    const struct mpscq *q;
    uint64_t qid;                  /* with q: whose knowledge it is */
    uint64_t pos;
    /* A segment at or before pos's, and its first ticket: usable while
     * chead < segbase + nslots (it was never recyclable: design.md 16). */
    struct mpscq_segment *seg;
    uint64_t segbase;
    /* [hs[i], he[i]): ascending, disjoint, below pos.  Only a range's
     * front is dropped as it is found done; a done ticket inside one is
     * read again, as it would be without the cursor. */
    uint64_t hs[MPSCQ_CHOLES], he[MPSCQ_CHOLES];
    unsigned nh;
    /* The hot-consumer measurement (yield_to_hot): takes in a row, the
     * clock at the last measurement (0: none yet), and the verdict. */
    uint64_t takes, stamp;
    int hot;
    uint64_t used;                 /* this thread's clock at its last use */
};
#define MPSCQ_CURSORS 4
static _Thread_local struct many_pos mpos[MPSCQ_CURSORS];
static _Thread_local uint64_t mpos_clock;

/* This thread's cursor for q, or NULL. */
static inline struct many_pos *cursor_find(const struct mpscq *q)
{
    for (unsigned i = 0; i < MPSCQ_CURSORS; i++)
        if (mpos[i].q == q && mpos[i].qid == q->qid)
            return &mpos[i];
    return NULL;
}

/* q's cursor; without one, the least recently used, emptied (many_take
 * then starts it at chead). */
static inline struct many_pos *cursor_for(const struct mpscq *q)
{
    struct many_pos *p = cursor_find(q);
    if (!p) {
        p = &mpos[0];
        for (unsigned i = 1; i < MPSCQ_CURSORS; i++)
            if (mpos[i].used < p->used)
                p = &mpos[i];
        p->q = NULL;
    }
    p->used = ++mpos_clock;
    return p;
}

static inline void drop_hole(struct many_pos *p, unsigned i)
{
    for (unsigned j = i + 1; j < p->nh; j++) {
        p->hs[j - 1] = p->hs[j];
        p->he[j - 1] = p->he[j];
    }
    p->nh--;
}

/* Ticket h of hole i was read done (front) or passed; the next ticket
 * of the holes to read.  *i moves on when hole i is over or dropped. */
static inline uint64_t hole_step(struct many_pos *p, unsigned *i, uint64_t h, int done)
{
    if (done && h == p->hs[*i])
        p->hs[*i]++;
    h++;
    if (p->hs[*i] >= p->he[*i])
        drop_hole(p, *i);
    else if (h < p->he[*i])
        return h;
    else
        ++*i;
    return *i < p->nh ? p->hs[*i] : 0;
}

/* ct is the close ticket: forget the tickets at or past it, never
 * written (passed while mpscq_close was between its two steps, whose
 * tail read counts them: load_limit). */
static void close_trim(struct many_pos *p, uint64_t ct)
{
    while (p->nh && p->hs[p->nh - 1] >= ct)
        p->nh--;
    if (p->nh && p->he[p->nh - 1] > ct)
        p->he[p->nh - 1] = ct;
    if (p->pos > ct)
        p->pos = ct;
    if (p->seg && p->segbase > p->pos)
        p->seg = NULL;
}

/* The segment holding ticket t, from s on (t at or past s's first
 * ticket): along next, or by the cursor's segment when jump says it is
 * usable (never recycled: design.md 16) and t is in it or past it.
 * NULL when a segment on the way is not linked yet: nothing in it is
 * written. */
static inline struct mpscq_segment *seg_reach(const struct mpscq *q, struct mpscq_segment *s,
                                              uint64_t t, const struct many_pos *p, int jump)
{
    while (t - s->base >= q->nslots) {
        if (jump && p->segbase > s->base && t >= p->segbase) {
            s = p->seg;
            continue;
        }
        /* Acquire: the linker's id and cleared states. */
        struct mpscq_segment *n = atomic_load_explicit(&s->next, memory_order_acquire);
        if (!n)
            return NULL;
        MPSCQ_HB_AFTER(&s->next);
        s = n;
    }
    return s;
}

/* ------------------------------------------------------------------ */
/* Yielding to a hot consumer (design.md s. 16)                         */

/* The hot word's parts: an id of the record (two records in use at once
 * that share one only make their consumers contend, as without the
 * word), the take count, bit 0 set. */
#define HOT_ID_SHIFT 24
static inline uint64_t hot_id(const struct mpscq_hp_rec *r)
{
    return ((uint64_t)(uintptr_t)r >> 6) & ((UINT64_C(1) << (64 - HOT_ID_SHIFT)) - 1);
}

static inline uint64_t hot_word(const struct mpscq_hp_rec *r, uint64_t takes)
{
    return hot_id(r) << HOT_ID_SHIFT | (takes << 1 & ((UINT64_C(1) << HOT_ID_SHIFT) - 1)) | 1;
}

static inline uint64_t hot_clock(void)
{
#ifdef MPSCQ_TEST_HOOKS
    if (mpscq_test_hot_clock)
        return mpscq_test_hot_clock();
#endif
    return mpscq_mono_ns();
}

/* p's thread stops being hot (or its measurement restarts): the word
 * is cleared if it names this record. */
static void hot_cool(struct mpscq *q, const struct mpscq_hp_rec *r, struct many_pos *p)
{
    p->takes = 0;
    p->stamp = 0;
    if (!p->hot)
        return;
    p->hot = 0;
    /* Relaxed: a hint.  Another consumer may have written its own word
     * between the load and the store; it writes it again at its next
     * take. */
    uint64_t v = atomic_load_explicit(&q->chot, memory_order_relaxed);
    if (v >> HOT_ID_SHIFT == hot_id(r))
        atomic_store_explicit(&q->chot, 0, memory_order_relaxed);
}

/* A take: measure, and while hot, show the progress. */
static inline void hot_took(struct mpscq *q, const struct mpscq_hp_rec *r, struct many_pos *p)
{
    if (++p->takes % MPSCQ_HOT_TAKES == 0) {
        uint64_t now = hot_clock();
        int hot = p->stamp && now - p->stamp < (uint64_t)MPSCQ_HOT_TAKES * MPSCQ_HOT_NS;
        if (!hot && p->hot)
            hot_cool(q, r, p); /* slowed down: clear the word */
        p->stamp = now;
        p->hot = hot;
    }
    if (p->hot)
        /* Relaxed: a hint; its line is written by the hot consumer only
         * and read once per window by the others. */
        atomic_store_explicit(&q->chot, hot_word(r, p->takes), memory_order_relaxed);
}

/* Before a scan: while another consumer is hot and keeps taking, wait
 * rather than take from the lines it is taking from (two consumers
 * taking side by side move each line between their CPUs at almost
 * every take: several times slower in all than one of them alone).
 * Bounded: a window without a take ends it (a hot consumer stopped
 * delays the others one window), and MPSCQ_HOT_WAIT_NS ends it whatever
 * happens. */
static void yield_to_hot(struct mpscq *q, const struct mpscq_hp_rec *r, struct many_pos *p)
{
    /* Relaxed: a hint; nothing is read through it. */
    uint64_t v = atomic_load_explicit(&q->chot, memory_order_relaxed);
    if (!v || v >> HOT_ID_SHIFT == hot_id(r))
        return;
    /* Our own takes are no longer in a row. */
    hot_cool(q, r, p);
    unsigned ns = MPSCQ_HOT_WINDOW0_NS;
    for (unsigned waited = 0; waited < MPSCQ_HOT_WAIT_NS;) {
        mpscq_spin_ns(ns);
        waited += ns;
        MPSCQ_TEST_HOOK(MPSCQ_HOOK_MANY_YIELD, q, ns);
        uint64_t n = atomic_load_explicit(&q->chot, memory_order_relaxed);
        if (!n)
            return; /* cooled */
        if (n == v) {
            /* No take in the window: the hot consumer stopped, was
             * preempted or slowed down.  Clear its word (a CAS: not a
             * newer one), so that the calls after ours do not wait a
             * window for it each; it writes it again if it goes on
             * taking hot. */
            atomic_compare_exchange_strong_explicit(&q->chot, &n, 0, memory_order_relaxed,
                                                    memory_order_relaxed);
            return;
        }
        v = n;
        if (ns < MPSCQ_HOT_WINDOW_NS)
            ns <<= 1;
        if (ns > MPSCQ_HOT_WAIT_NS - waited)
            ns = MPSCQ_HOT_WAIT_NS - waited; /* the last window ends at the bound */
    }
}

/* One dequeue: MPSCQ_OK, MPSCQ_EMPTY or MPSCQ_CLOSED. */
static int many_take(struct mpscq *q, struct mpscq_hp_rec *r, void **msg)
{
    struct mpscq_backoff bo;
    mpscq_backoff_init(&bo);
    struct many_pos *p = cursor_for(q);
    if (p->q != q || p->qid != q->qid) {
        /* A cursor new to q: no measurement yet (the rest below). */
        p->takes = p->stamp = 0;
        p->hot = 0;
    }
    if (in_many == IN_CALL) {
        in_many = IN_CALL_YIELDED;
        yield_to_hot(q, r, p);
    }
    struct mpscq_segment *s0 = protect(q, r), *s = s0;
    /* Acquire: pairs with advance_chead's release (the states below it
     * are done, a batch interior at it is written).  Read after cseg, so
     * cseg's segment holds a ticket at or below it. */
    uint64_t c = atomic_load_explicit(&q->chead, memory_order_acquire);
    MPSCQ_HB_AFTER(&q->chead);
    MPSCQ_TEST_HOOK(MPSCQ_HOOK_MANY_PROTECTED, q, c);
    if (p->q != q || p->qid != q->qid || p->pos < c) {
        p->q = q;
        p->qid = q->qid;
        p->pos = c;
        p->seg = NULL;
        p->nh = 0;
    } else
        while (p->nh && p->hs[0] < c) {
            /* Below chead: done. */
            p->hs[0] = c;
            if (p->hs[0] >= p->he[0])
                drop_hole(p, 0);
        }
    /* Never recycled (its end was never below chead), and now at or
     * after cseg, which our hazard names: usable. */
    int segok = p->seg && c < p->segbase + q->nslots;
    /* The limit: this thread's last load of tail, refreshed when the scan
     * reaches it, and always before an EMPTY.  Any load of tail serves
     * the order argument (design.md s. 16): it read the fetch-and-add of
     * every ticket below it, so the slot writes that preceded those are
     * visible to this later scan. */
    uint64_t lim = r->climit & ~MPSCQ_TAIL_CLOSED;
    int final = (r->climit & MPSCQ_TAIL_CLOSED) != 0, fresh = 0;
    /* The scan: the holes (i < nh, h the ticket in hole i), then u from
     * pos.  frozen: a ticket passed with the hole list full; pos stays
     * at it, u goes on. */
    unsigned i = 0;
    uint64_t h = p->nh ? p->hs[0] : 0, u = p->pos, prev = UINT64_MAX;
    int prev_done = 1, frozen = 0;
    for (;;) {
        int at_hole = i < p->nh;
        uint64_t t = at_hole ? h : u;
        if (!at_hole && t >= lim) {
            if (fresh)
                break;
            lim = load_limit(q, &final);
            r->climit = lim | (final ? MPSCQ_TAIL_CLOSED : 0);
            fresh = 1;
            if (final) {
                /* A limit read while mpscq_close was between its steps
                 * could pass tickets at or past the close ticket, which
                 * are never written: they are no holes. */
                close_trim(p, lim);
                if (u > lim)
                    u = lim;
            }
            if (p->nh || frozen) {
                /* The tickets passed so far were read before this load:
                 * read them again after it, or a message written before
                 * a later ticket of its producer could be passed while
                 * that later one is taken (per-producer order, design.md
                 * s. 16). */
                i = 0;
                h = p->nh ? p->hs[0] : 0;
                u = p->pos;
                s = s0;
                prev = UINT64_MAX;
            }
            continue;
        }
        if (t - s->base >= q->nslots) {
            /* NULL: not linked yet (never a hole's segment). */
            struct mpscq_segment *n = seg_reach(q, s, t, p, !at_hole && segok);
            if (!n)
                break;
            s = n;
        }
        unsigned st = load_state(q, s, t);
        MPSCQ_PEND_WORK(1);
        int k = classify(st, prev == t - 1 ? prev_done : 1);
        if (k == T_TAKE) {
            _Atomic unsigned char *sv = mpscq_slot_state(s, (size_t)(t & q->mask));
            unsigned char expect = (unsigned char)st;
            MPSCQ_HB_BEFORE(sv);
            /* acq_rel: acquire, the producer's value (as the load above);
             * release, for a consumer that reads TAKEN and takes the batch
             * interior that follows.  Relaxed on failure: the value seen
             * is only classified. */
            if (!MPSCQ_TEST_FORCE_CAS_FAIL() &&
                atomic_compare_exchange_strong_explicit(sv, &expect,
                                                        (unsigned char)(st | MPSCQ_SLOT_TAKEN),
                                                        memory_order_acq_rel,
                                                        memory_order_relaxed)) {
                MPSCQ_RMW(1);
                MPSCQ_HB_AFTER(sv);
                *msg = *mpscq_slot_val(s, (size_t)(t & q->mask));
                MPSCQ_TEST_HOOK(MPSCQ_HOOK_MANY_CLAIMED, q, t);
                if (at_hole)
                    hole_step(p, &i, h, 1);
                else if (!frozen) {
                    p->pos = t + 1;
                    p->seg = s;
                    p->segbase = s->base;
                }
                /* chead moves in steps of MPSCQ_CHEAD_STEP and at a
                 * segment's end, not at every take: one CAS on the
                 * consumers' shared line per step, and a scan reads at
                 * most that many done states more. */
                uint64_t done = p->nh ? p->hs[0] : p->pos;
                int crossed = (done >> q->shift) != (c >> q->shift);
                if (done >= c + MPSCQ_CHEAD_STEP || crossed)
                    advance_chead(q, c, done);
                unprotect(r);
                hot_took(q, r, p);
                count_take(q, r);
                if (crossed)
                    try_reclaim(q, RECLAIM_BUSY); /* chead left a segment */
                return MPSCQ_OK;
            }
            /* Lost: another consumer took it (only consumers write a
             * written slot's state, and only to set TAKEN).  Back off,
             * then go on from the next ticket: this one is done, and the
             * limit is still one this scan may use.  (A forced failure
             * of the test library leaves it takeable: tried again.) */
            MPSCQ_RMW(1);
            MPSCQ_STAT_ADD(q, st_cas_fail, 1);
            mpscq_backoff_wait(&bo);
            if (bo.fails == 1000)
                mpscq_warn_contention(q, 1);
            if (expect == (unsigned char)st)
                continue;
            k = T_DONE;
        }
        if (k == T_WAIT)
            /* Not written yet (or an interior whose head is not taken):
             * passed, nobody waits for its producer. */
            MPSCQ_TEST_HOOK(MPSCQ_HOOK_MANY_SCANNED, q, t);
        prev = t;
        prev_done = k == T_DONE;
        if (at_hole) {
            h = hole_step(p, &i, h, k == T_DONE);
            continue;
        }
        u = t + 1;
        if (frozen)
            continue;
        if (k == T_WAIT) {
            if (p->nh && p->he[p->nh - 1] == t)
                p->he[p->nh - 1] = u; /* the next ticket of a stopped batch, say */
            else if (p->nh == MPSCQ_CHOLES) {
                frozen = 1; /* pos stays here: read again next time */
                continue;
            } else {
                p->hs[p->nh] = t;
                p->he[p->nh] = u;
                i = ++p->nh;
            }
        }
        p->pos = u;
    }
    if (!frozen && s->base <= p->pos) {
        p->seg = s;
        p->segbase = s->base;
    }
    /* Nothing takeable below a fresh limit: EMPTY, linearized at that
     * load of tail (every ticket below it was done or not yet written,
     * design.md s. 16). */
    uint64_t done = p->nh ? p->hs[0] : p->pos;
    if (done > c)
        advance_chead(q, c, done);
    int drained = !p->nh && !frozen && u >= lim;
    int mode = -1;
    if (drained) {
        /* Idle when no ticket was issued since the last EMPTY.  Relaxed:
         * a hint for the pool's bound; written only when it changes, so
         * consumers polling an empty queue write no shared line. */
        int idle = atomic_load_explicit(&q->cidle, memory_order_relaxed) == lim;
        if (!idle)
            atomic_store_explicit(&q->cidle, lim, memory_order_relaxed);
        if (reclaim_due(q, done, idle))
            mode = idle ? RECLAIM_IDLE : RECLAIM_CAUGHT_UP;
    } else if (atomic_load_explicit(&q->pool_count, memory_order_relaxed) > mpscq_pool_high(q)) {
        /* Nothing takeable, but a ticket not written yet (a producer
         * between ticket and write): caught up all the same.  Relaxed: a
         * hint; the flag's holder decides. */
        mode = RECLAIM_CAUGHT_UP;
    }
    unprotect(r);
    hot_cool(q, r, p);
    if (q->capacity)
        /* Acquire: every take counted so far (raise_released).  Before
         * any free: a producer waiting for a place does not wait for
         * munmap. */
        raise_released(q, atomic_load_explicit(&q->dequeued, memory_order_acquire));
    if (mode >= 0)
        try_reclaim(q, mode);
    if (final && drained) {
        /* Closed and drained: every sleeping consumer must learn it (a
         * producer's wake-up after the close wakes only one).  seq_cst,
         * as the sleepers' count. */
        if (atomic_load_explicit(&q->csleepers, memory_order_seq_cst))
            mpscq_futex_wake_all(&q->parked);
        return MPSCQ_CLOSED;
    }
    return MPSCQ_EMPTY;
}

/* Enter a many-consumer call: the record, and no nesting. */
static int many_enter(struct mpscq *q, struct mpscq_hp_rec **r)
{
    if (in_many)
        return MPSCQ_BUSY;
    in_many = IN_CALL;
    *r = mpscq_hp_acquire(q);
    if (!*r) {
        in_many = 0;
        MPSCQ_STAT_ADD(q, st_nomem, 1);
        return MPSCQ_NOMEM;
    }
    return MPSCQ_OK;
}

int mpscq_many_dequeue(struct mpscq *q, void **msg)
{
    struct mpscq_hp_rec *r;
    int rc = many_enter(q, &r);
    if (rc != MPSCQ_OK)
        return rc;
    rc = many_take(q, r, msg);
    in_many = 0;
    return rc;
}

size_t mpscq_many_dequeue_batch(struct mpscq *q, void **msgs, size_t max)
{
    struct mpscq_hp_rec *r;
    if (many_enter(q, &r) != MPSCQ_OK)
        return 0;
    size_t n = 0;
    while (n < max && many_take(q, r, &msgs[n]) == MPSCQ_OK)
        n++;
    in_many = 0;
    return n;
}

/* ------------------------------------------------------------------ */
/* Sleeping consumers (design.md s. 16)                                 */

/* 1 when some ticket from chead up to a fresh load of tail can be taken
 * now (read only: no claim).  For the baton, below.  It reads this
 * thread's holes and then from its cursor, which it leaves as it is:
 * the tickets in [chead, pos) outside the holes are done (a claim or a
 * refusal is final), so nothing takeable is missed; without a cursor
 * for q, from chead. */
static int any_takeable(struct mpscq *q, struct mpscq_hp_rec *r)
{
    const struct many_pos *p = cursor_find(q);
    struct mpscq_segment *s = protect(q, r);
    /* Acquire, both: as in many_take. */
    uint64_t c = atomic_load_explicit(&q->chead, memory_order_acquire);
    int final;
    uint64_t lim = load_limit(q, &final);
    int mine = p && p->pos >= c;
    unsigned i = 0, nh = mine ? p->nh : 0;
    uint64_t u = mine ? p->pos : c, prev = UINT64_MAX;
    /* As in many_take: the cursor's segment, never recycled. */
    int segok = mine && p->seg && c < p->segbase + q->nslots;
    int prev_done = 1;
    uint64_t t = 0;
    for (;;) {
        int at_hole = i < nh;
        if (at_hole) {
            /* Below chead: done; past the limit: not issued yet. */
            if (t < p->hs[i] || t < c)
                t = p->hs[i] > c ? p->hs[i] : c;
            if (t >= p->he[i] || t >= lim) {
                i++;
                continue;
            }
        } else {
            t = u;
            if (t >= lim)
                break;
        }
        if (t - s->base >= q->nslots) {
            struct mpscq_segment *n = seg_reach(q, s, t, p, !at_hole && segok);
            if (!n)
                break;
            s = n;
        }
        /* A ticket's predecessor not read here is below chead, or below
         * pos outside the holes (holes are never adjacent): done. */
        int k = classify(load_state(q, s, t), prev == t - 1 ? prev_done : 1);
        MPSCQ_PEND_WORK(1);
        if (k == T_TAKE) {
            unprotect(r);
            return 1;
        }
        prev = t;
        prev_done = k == T_DONE;
        if (at_hole)
            t++;
        else
            u = t + 1;
    }
    unprotect(r);
    return 0;
}

/* After a consumer that slept took a message: if others still sleep and
 * a message is waiting, wake one (the producers woke only one of them,
 * and a producer that came meanwhile may have seen nobody to wake).  After
 * the close, wake them all: they will see CLOSED once drained. */
static void pass_baton(struct mpscq *q, struct mpscq_hp_rec *r)
{
    /* seq_cst: ordered after our take and sleepers' counts. */
    if (atomic_load_explicit(&q->csleepers, memory_order_seq_cst) == 0)
        return;
    /* Acquire: a load of tail, as in load_limit. */
    uint64_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
    if (t & MPSCQ_TAIL_CLOSED) {
        mpscq_futex_wake_all(&q->parked);
        return;
    }
    /* Re-arm: the producers' wake check reads parked.  seq_cst CAS 0 ->
     * 1, the store of the Dekker pair; the barrier orders it before our
     * look at the queue: a producer whose write we do not see sees the
     * 1 and wakes a sleeper itself. */
    int z = 0;
    atomic_compare_exchange_strong_explicit(&q->parked, &z, 1, memory_order_seq_cst,
                                            memory_order_relaxed);
    mpscq_wait_barrier(q);
    /* A message another consumer takes before the woken one costs it one
     * more sleep: a spurious wake-up, never a lost one. */
    if (any_takeable(q, r))
        mpscq_wake_consumer(q);
}

struct spin_ctx {
    struct mpscq *q;
    struct mpscq_hp_rec *r;
};

static int spin_take(void *ctx, void **msg)
{
    struct spin_ctx *c = ctx;
    return many_take(c->q, c->r, msg);
}

/* Leaving mpscq_dequeue_wait with rc after it armed (armed): a consumer
 * that was woken may hold the duty to wake the next sleeper, whichever
 * way it leaves (a message taken in its look, or a timeout), so every
 * such exit passes the baton (design.md s. 16).  CLOSED woke the others
 * in many_take. */
static int wait_exit(struct mpscq *q, struct mpscq_hp_rec *r, int rc, int armed)
{
    if (armed && rc != MPSCQ_CLOSED)
        pass_baton(q, r);
    return rc;
}

static int many_wait(struct mpscq *q, struct mpscq_hp_rec *r, void **msg, long long timeout_ns)
{
    int rc = many_take(q, r, msg);
    if (rc != MPSCQ_EMPTY)
        return rc;
    if (timeout_ns == 0)
        return MPSCQ_TIMEOUT;
    uint64_t deadline = mpscq_deadline(timeout_ns);
    /* Spin first (the budget is per call here: consumers share the
     * queue, and a thread's budget is its own). */
    unsigned budget = MPSCQ_WAIT_SPIN_MAX_NS;
    struct spin_ctx sc = { q, r };
    rc = mpscq_wait_spin(&budget, timeout_ns, spin_take, &sc, msg);
    if (rc != MPSCQ_EMPTY)
        return rc;
    for (unsigned round = 0;; round++) {
        uint64_t now = mpscq_mono_ns();
        if (now >= deadline) {
            /* Over: one more look, and no arming (a producer would pay a
             * wake-up for nobody). */
            rc = many_take(q, r, msg);
            return wait_exit(q, r, rc == MPSCQ_EMPTY ? MPSCQ_TIMEOUT : rc, round > 0);
        }
        MPSCQ_TEST_HOOK(MPSCQ_HOOK_MANY_ARM, q, round);
        /* parked: non-zero while someone may sleep; a producer that reads
         * it non-zero XCHGs it to 0 and wakes one sleeper (wait.c).  CAS
         * 0 -> 1, seq_cst: the Dekker store (a close's MPSCQ_PARKED_CLOSE
         * stays). */
        int v = 0;
        if (atomic_compare_exchange_strong_explicit(&q->parked, &v, 1, memory_order_seq_cst,
                                                    memory_order_relaxed))
            v = 1;
        /* seq_cst RMW: counted before the look, so that a consumer
         * passing the baton after our look sees us. */
        atomic_fetch_add_explicit(&q->csleepers, 1, memory_order_seq_cst);
        MPSCQ_RMW(2);
        MPSCQ_TEST_HOOK(MPSCQ_HOOK_BARRIER, q, 0);
        mpscq_wait_barrier(q);
        rc = many_take(q, r, msg);
        if (rc != MPSCQ_EMPTY) {
            /* seq_cst RMW, as the increment. */
            atomic_fetch_sub_explicit(&q->csleepers, 1, memory_order_seq_cst);
            return wait_exit(q, r, rc, 1);
        }
        struct timespec rel, *relp = NULL;
        if (deadline != UINT64_MAX) {
            uint64_t left = deadline - now;
            rel.tv_sec = (time_t)(left / 1000000000u);
            rel.tv_nsec = (long)(left % 1000000000u);
            relp = &rel;
        }
        MPSCQ_STAT_ADD(q, st_parks, 1);
        MPSCQ_TEST_HOOK(MPSCQ_HOOK_PARK, q, 0);
        /* Ends at a producer's or the close's wake-up, a signal (we go on
         * waiting: the loop), or the timeout; at once when parked is no
         * longer v. */
        int timed_out = mpscq_futex_wait(&q->parked, v, relp);
        MPSCQ_TEST_HOOK(MPSCQ_HOOK_MANY_WOKEN, q, (uint64_t)timed_out);
        (void)timed_out;
        /* seq_cst RMW, as the increment. */
        atomic_fetch_sub_explicit(&q->csleepers, 1, memory_order_seq_cst);
        rc = many_take(q, r, msg);
        if (rc != MPSCQ_EMPTY)
            return wait_exit(q, r, rc, 1);
    }
}

int mpscq_many_dequeue_wait(struct mpscq *q, void **msg, long long timeout_ns)
{
    struct mpscq_hp_rec *r;
    int rc = many_enter(q, &r);
    if (rc != MPSCQ_OK)
        return rc;
    rc = many_wait(q, r, msg, timeout_ns);
    in_many = 0;
    return rc;
}

int mpscq_many_dequeue_batch_wait(struct mpscq *q, void **msgs, size_t max, size_t *n,
                                  long long timeout_ns)
{
    struct mpscq_hp_rec *r;
    int rc = many_enter(q, &r);
    if (rc != MPSCQ_OK)
        return rc;
    rc = many_wait(q, r, &msgs[0], timeout_ns);
    if (rc == MPSCQ_OK) {
        size_t k = 1;
        while (k < max && many_take(q, r, &msgs[k]) == MPSCQ_OK)
            k++;
        *n = k;
    }
    in_many = 0;
    return rc;
}

/* mpscq_destroy's (it runs alone): every message still queued to drop,
 * in ticket order. */
void mpscq_many_drain(struct mpscq *q, void (*drop)(void *, void *), void *arg)
{
    /* Relaxed throughout: destroy runs alone (its contract). */
    uint64_t t = atomic_load_explicit(&q->chead, memory_order_relaxed);
    uint64_t lim = atomic_load_explicit(&q->tail, memory_order_relaxed) & ~MPSCQ_TAIL_CLOSED;
    struct mpscq_segment *s = atomic_load_explicit(&q->cseg, memory_order_relaxed);
    for (; t < lim; t++) {
        while (t - s->base >= q->nslots) {
            /* cseg may lag chead by several segments. */
            s = atomic_load_explicit(&s->next, memory_order_relaxed);
            if (!s)
                return;
        }
        unsigned st = atomic_load_explicit(mpscq_slot_state(s, (size_t)(t & q->mask)),
                                           memory_order_relaxed);
        if ((st & (MPSCQ_SLOT_READY | MPSCQ_SLOT_TAKEN | MPSCQ_SLOT_SKIP)) == MPSCQ_SLOT_READY &&
            drop)
            drop(*mpscq_slot_val(s, (size_t)(t & q->mask)), arg);
    }
}
