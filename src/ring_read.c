/*
 * ring_read.c - mpscq_ring's consumer: the main scan, passed ranges
 * (gaps), retiring and installing chunks, the sweep of dead claims, and
 * the sleeping read.  doc/ring-design.md s. 4-5 give the argument.
 *
 * Everything the consumer keeps lives in the region (struct
 * ring_consumer, free[], gaps[]) so that any process can be the
 * consumer; only the consumer writes it, and it never trusts it: every
 * index read from the region is checked before it is used.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "arch.h"
#include "ring.h"
#include "wait.h"

#define STUCK (-1)   /* the main scan cannot go on below its limit */
#define MOVED (-2)   /* the main scan moved without delivering */
/* The consumer sweeps for dead claims on every this many EMPTY answers
 * while ranges are passed (and before every sleep). */
#define SWEEP_EVERY 16u

static inline uint64_t mapw(const struct mpscq_ring *r, uint64_t c)
{
    /* Acquire: an install (release CAS) or a producer's refusal. */
    return atomic_load_explicit(&r->map[c & r->mmask], memory_order_acquire);
}

/* w installs chunk c on a physical chunk that exists (the map is in
 * shared memory: a corrupt word must not send us outside the region). */
static inline int installed_ok(const struct mpscq_ring *r, uint64_t w, uint64_t c)
{
    return w == RING_MAPW(c, RING_MAP_INSTALLED, RING_MAPW_PHYS(w)) && RING_MAPW_PHYS(w) < r->K;
}
#define installed(w, c) installed_ok(r, (w), (c))

/* ---- waking ------------------------------------------------------------ */

void mpscq_ring_wake(struct mpscq_ring *r)
{
    /* seq_cst exchange: one waker per sleep; the wake_seq bump makes a
     * consumer that is about to FUTEX_WAIT on the old value return. */
    if (atomic_exchange_explicit(&r->sh->sleeping, 0, memory_order_seq_cst)) {
        atomic_fetch_add_explicit(&r->sh->wake_seq, 1, memory_order_seq_cst);
        /* Shared futex (not _PRIVATE): the consumer may be another process. */
        mpscq_futex_wake_shared_all(&r->sh->wake_seq);
    }
}

/* ---- gaps ---------------------------------------------------------------- */

static int chunk_has_gap(const struct mpscq_ring *r, uint64_t c)
{
    for (uint32_t i = 0; i < r->ng; i++) {
        uint64_t gc = ring_chunk(r, r->gaps[i].start);
        if (gc == c)
            return 1;
        if (gc > c)
            break;
    }
    return 0;
}

static void install_free(struct mpscq_ring *r);

/* Chunk c is behind the main scan with nothing passed in it: its
 * physical chunk goes back to the free list and its map word to the
 * chunk number M later. */
static void retire(struct mpscq_ring *r, uint64_t c)
{
    struct ring_consumer *cs = r->cs;
    if (r->held && c == r->hold_c) {
        /* A record mpscq_ring_peek handed out lies in it: retired at the
         * release (unhold), which the region's `held` asks for, and so
         * does the next consumer if this one never releases. */
        cs->held = c + 1;
        return;
    }
    uint64_t w = mapw(r, c);
    uint64_t c_chunk = c & RING_CMASK;
    if (RING_MAPW_CHUNK(w) != c_chunk)
        return;                       /* not ours (already retired) */
    if (RING_MAPW_STATE(w) == RING_MAP_INSTALLED) {
        uint32_t p = RING_MAPW_PHYS(w);
        if (p >= r->K || r->nf >= r->K)
            return;                   /* corrupt: leave it */
        /* Plain zeroing: no producer writes this chunk until it is
         * installed again (release CAS below in install_free). */
        memset((void *)ring_state(r, p), 0, r->state_bytes);
        r->free_list[r->nf++] = p;
    }
    /* The word's next chunk number: c + M, or the first one after it the
     * head has not passed (a chunk passed while this word was still c's,
     * under a record's spill, is never installed). */
    uint64_t next = c + r->M, hc = ring_chunk(r, cs->head);
    if (next < hc)
        next += (hc - next + r->M - 1) / r->M * r->M;
    /* Release: the zeroed states before the word a producer may read. */
    atomic_store_explicit(&r->map[c & r->mmask], RING_MAPW(next, RING_MAP_FREE, 0),
                          memory_order_release);
}

/* The oldest chunk not retired: the first gap's, or the head's. */
static uint64_t oldest(const struct mpscq_ring *r)
{
    const struct ring_consumer *cs = r->cs;
    uint64_t h = ring_chunk(r, cs->head);
    if (r->ng) {
        uint64_t g = ring_chunk(r, r->gaps[0].start);
        if (g < h)
            return g;
    }
    return h;
}

/* n's map word w names an older chunk c (n - c a multiple of M) still
 * installed, one the head has passed with nothing passed in it: only a
 * held chunk is left so (retire), and this one is not held, by this
 * handle or in the region.  A consumer that died holding a record whose
 * `held` a faulty process then cleared leaves one; installing would stop
 * at it for good (the producers FULL at n, the head never reaching n). */
static int orphan(const struct mpscq_ring *r, uint64_t n, uint64_t w)
{
    uint64_t d = (n - RING_MAPW_CHUNK(w)) & RING_CMASK, c = n - d;
    return d != 0 && d <= n && d % r->M == 0 && installed(w, c) &&
           c < ring_chunk(r, r->cs->head) && r->cs->held != c + 1 &&
           !(r->held && r->hold_c == c) && !chunk_has_gap(r, c);
}

/* Give free physical chunks to the next chunk numbers, in order.  A
 * chunk number at or past oldest() + M must wait: its map word still
 * belongs to a pinned chunk. */
static void install_free(struct mpscq_ring *r)
{
    struct ring_consumer *cs = r->cs;
    uint64_t lim = oldest(r) + r->M;
    /* Relaxed: any value will do; tail only grows (and a chunk found
     * clean here is refused by a claim that lands before the install). */
    uint64_t t = atomic_load_explicit(&r->sh->tail, memory_order_relaxed) & ~RING_CLOSED;
    while (r->nf && cs->next_install < lim) {
        uint64_t n = cs->next_install;
        uint64_t w = mapw(r, n);
        if ((n + 1) * r->S <= t) {
            /* Tail is past its end: all of it was claimed while it had no
             * chunk (refused, or under the spill of a record that started
             * before it).  Installing it would only leave ranges nobody
             * writes; the scan refuses it when it gets there. */
            cs->next_install++;
        } else if (w == RING_MAPW(n, RING_MAP_FREE, 0)) {
            uint32_t p = r->free_list[r->nf - 1];
            if (p >= r->K) {          /* corrupt entry: drop it */
                r->nf--;
                RING_COUNT(cs->corrupt);
                continue;
            }
            /* Release: the zeroed states before the install; acq on
             * failure: a producer's refusal. */
            MPSCQ_HB_BEFORE(&r->map[n & r->mmask]);
            if (atomic_compare_exchange_strong_explicit(&r->map[n & r->mmask], &w,
                                                        RING_MAPW(n, RING_MAP_INSTALLED, p),
                                                        memory_order_acq_rel,
                                                        memory_order_acquire)) {
                r->nf--;
                /* Room: wake the writers waiting for it (ring_write.c). */
                mpscq_ring_wake_space(r);
            }
            cs->next_install++;
        } else if (w == RING_MAPW(n, RING_MAP_REFUSED, 0) || installed(w, n)) {
            cs->next_install++;
        } else if (orphan(r, n, w)) {
            retire(r, n - ((n - RING_MAPW_CHUNK(w)) & RING_CMASK));
            if (mapw(r, n) == w)
                break;                /* not retired (corrupt counts): stop */
        } else {
            break;
        }
    }
}

/* The main scan moved from chunk `from` to the chunk of the head. */
static void passed_chunks(struct mpscq_ring *r, uint64_t from)
{
    uint64_t to = ring_chunk(r, r->cs->head);
    for (uint64_t c = from; c < to; c++)
        if (!chunk_has_gap(r, c))
            retire(r, c);
    /* Every chunk below the head's is installed already or never will
     * be (refused): installing resumes at the head's at the earliest.
     * (A passed refused chunk's word is FREE for c + M now: install_free
     * must not stop at it.) */
    if (r->cs->next_install < to)
        r->cs->next_install = to;
    install_free(r);
}

/* Append [a, b) (inside one chunk, past every gap).  0, or STUCK when
 * the list is full. */
static int gap_add(struct mpscq_ring *r, uint64_t a, uint64_t b)
{
    if (r->ng && r->gaps[r->ng - 1].end == a && ring_chunk(r, r->gaps[r->ng - 1].start) == ring_chunk(r, a)) {
        r->gaps[r->ng - 1].end = b;
        return 0;
    }
    if (r->ng >= r->G)
        return STUCK;
    r->gaps[r->ng].start = a;
    r->gaps[r->ng].end = b;
    r->ng++;
    return 0;
}

static void gap_delete(struct mpscq_ring *r, uint32_t i)
{
    memmove(&r->gaps[i], &r->gaps[i + 1], (r->ng - i - 1) * sizeof r->gaps[0]);
    r->ng--;
}

/* A record [a, b) was delivered from a gap: take it out of every gap (it
 * may reach into the next chunk's first gap, its spill).  Chunks left
 * with no gap behind the head are retired. */
static void gap_remove(struct mpscq_ring *r, uint64_t a, uint64_t b)
{
    struct ring_consumer *cs = r->cs;
    uint64_t first = ring_chunk(r, a), last = ring_chunk(r, b - 1);
    for (uint32_t i = 0; i < r->ng;) {
        struct ring_gap *g = &r->gaps[i];
        if (g->end <= a) {
            i++;
            continue;
        }
        if (g->start >= b)
            break;
        if (g->start >= a && g->end <= b) {
            gap_delete(r, i);
            continue;
        }
        if (g->start >= a) {
            g->start = b;
        } else if (g->end <= b) {
            g->end = a;
        } else if (r->ng < r->G) {
            /* Split. */
            memmove(&r->gaps[i + 2], &r->gaps[i + 1], (r->ng - i - 1) * sizeof r->gaps[0]);
            r->gaps[i + 1].start = b;
            r->gaps[i + 1].end = g->end;
            g->end = a;
            r->ng++;
            i++;
        }
        /* (No room to split: the record's states say DONE, so the gap
         * pass skips it; the sweep drops what is left.) */
        i++;
    }
    uint64_t head_chunk = ring_chunk(r, cs->head);
    for (uint64_t c = first; c <= last && c < head_chunk; c++)
        if (!chunk_has_gap(r, c))
            retire(r, c);
    install_free(r);
}

/* ---- delivering ---------------------------------------------------------- */

/* 1 when the header of the record at logical pos, stored at rec, is
 * sound: its position, its check, a length of 1 .. max_message.  *h is
 * the copy checked (the region may change under us: use only it). */
static int rec_ok(const struct mpscq_ring *r, uint64_t pos, const uint8_t *rec, struct ring_rec *h)
{
    memcpy(h, rec, sizeof *h);
    return h->pos == pos && (h->check ^ h->len) == RING_REC_CHECK && h->len != 0 &&
           h->len <= r->max_message;
}

/* Copy out the record at pos, stored at rec, whose header h is sound.
 * MPSCQ_OK (*recend = its end) or MPSCQ_INVAL (cap too small; *len = its
 * length). */
/* mpscq_ring_peek's take (the public calls refuse a NULL buf): hand out
 * the payload in place, and hold its chunk until the release (retire). */
static MPSCQ_COLD void rec_hold(struct mpscq_ring *r, uint64_t pos, const uint8_t *rec)
{
    r->held = 1;
    r->peek_data = rec + RING_HDR;
    r->hold_c = ring_chunk(r, pos);
}

static int rec_take(struct mpscq_ring *r, uint64_t pos, const uint8_t *rec,
                                        const struct ring_rec *h, void *buf, size_t cap,
                                        size_t *len, uint64_t *recend)
{
    if (h->len > cap) {
        *len = h->len;
        return MPSCQ_INVAL;
    }
    /* off < S and 16 + len <= max_rec: inside the chunk's data and spill. */
    if (MPSCQ_UNLIKELY(!buf))
        rec_hold(r, pos, rec);
    else
        memcpy(buf, rec + RING_HDR, h->len);
    *len = h->len;
    *recend = pos + ring_round_unit(RING_HDR + h->len);
    RING_COUNT(r->cs->delivered);
    return MPSCQ_OK;
}

/* The record whose HEAD is at logical pos, offset off (< S) in physical
 * chunk p: check its header, copy it out.  As rec_take, or STUCK for a
 * corrupt header (counted). */
static int take_record(struct mpscq_ring *r, uint64_t pos, uint64_t off, uint32_t p, void *buf,
                       size_t cap, size_t *len, uint64_t *recend)
{
    const uint8_t *rec = ring_data(r, p) + off;
    struct ring_rec h;
    if (!rec_ok(r, pos, rec, &h)) {
        RING_COUNT(r->cs->corrupt);
        return STUCK;
    }
    return rec_take(r, pos, rec, &h, buf, cap, len, recend);
}

/* The gap pass: the next committed record inside a gap at or after
 * pass_pos.  MPSCQ_OK / MPSCQ_INVAL as take_record, MPSCQ_EMPTY when
 * the pass is over. */
static int gap_pass(struct mpscq_ring *r, void *buf, size_t cap, size_t *len)
{
    struct ring_consumer *cs = r->cs;
    for (uint32_t i = 0; i < r->ng; i++) {
        struct ring_gap g = r->gaps[i];
        if (g.end <= cs->pass_pos)
            continue;
        uint64_t c = ring_chunk(r, g.start);
        uint64_t w = mapw(r, c);
        if (!installed(w, c) || g.start >= g.end || ring_chunk(r, g.end - 1) != c) {
            RING_COUNT(cs->corrupt);            /* not a range of an installed chunk */
            gap_delete(r, i--);
            continue;
        }
        uint32_t p = RING_MAPW_PHYS(w);
        _Atomic uint8_t *st = ring_state(r, p);
        uint64_t from = g.start > cs->pass_pos ? g.start : cs->pass_pos;
        for (uint64_t pos = from; pos < g.end; pos += RING_UNIT) {
            uint64_t u = (pos - c * r->S) / RING_UNIT;
            /* Acquire: pairs with the producer's commit exchange. */
            if (atomic_load_explicit(&st[u], memory_order_acquire) != RING_ST_HEAD)
                continue;
            MPSCQ_HB_AFTER(&st[u]);
            uint64_t end;
            int rc = take_record(r, pos, pos - c * r->S, p, buf, cap, len, &end);
            if (rc == MPSCQ_INVAL) {
                cs->pass_pos = pos;
                return rc;
            }
            /* Relaxed: only the consumer reads it from now on. */
            atomic_store_explicit(&st[u], RING_ST_DONE, memory_order_relaxed);
            if (rc == STUCK) {
                gap_remove(r, pos, pos + RING_UNIT);
                cs->pass_pos = pos + RING_UNIT;
                i = UINT32_MAX;  /* the list changed: start again at pass_pos */
                break;
            }
            gap_remove(r, pos, end);
            cs->pass_pos = end;
            /* The head inside the record (it came to the spill before the
             * commit and stopped there): [head, end) is this record's
             * alone, so the head moves past it rather than pass it later
             * as a gap that holds nothing, which pinned its chunk until a
             * sweep (test_spill_not_left_as_gap).  A sound record ends
             * within the limit: the head passed pos, so the limit, a tail
             * value, is past pos, and the first tail value past pos is
             * this claim's end.  The header's length is the producer's
             * word, though, and one that claims more than it wrote would
             * take the head past records of others: checked
             * (test_garbage_length_head_within_limit). */
            if (cs->head > pos && cs->head < end && end <= cs->limit) {
                uint64_t hc = ring_chunk(r, cs->head);
                cs->head = end;
                if (ring_chunk(r, end) > hc)
                    passed_chunks(r, hc);
            }
            return MPSCQ_OK;
        }
        if (i != UINT32_MAX)
            cs->pass_pos = g.end;     /* nothing committed in this gap yet */
    }
    cs->pass_active = 0;
    return MPSCQ_EMPTY;
}

/* One step of the main scan at the head (head < limit): deliver the
 * record there (MPSCQ_OK / MPSCQ_INVAL), or move the head past a range
 * it passes or a chunk with nothing in it (MOVED), or STUCK. */
static int main_step(struct mpscq_ring *r, uint64_t final_end, void *buf, size_t cap,
                     size_t *len)
{
    struct ring_consumer *cs = r->cs;
    uint64_t h = cs->head, c = ring_chunk(r, h), cend = (c + 1) * r->S;
    if (c >= oldest(r) + r->M)
        return STUCK;                 /* its map word is a pinned chunk's */
    uint64_t w = mapw(r, c);
    if (RING_MAPW_CHUNK(w) == (c & RING_CMASK) && RING_MAPW_STATE(w) == RING_MAP_FREE) {
        install_free(r);
        w = mapw(r, c);
        /* acq_rel, as a producer's refusal (ring_write.c); on failure w
         * is what won (a producer's refusal, or our own install). */
        if (w == RING_MAPW(c, RING_MAP_FREE, 0) &&
            atomic_compare_exchange_strong_explicit(&r->map[c & r->mmask], &w,
                                                    RING_MAPW(c, RING_MAP_REFUSED, 0),
                                                    memory_order_acq_rel, memory_order_acquire))
            w = RING_MAPW(c, RING_MAP_REFUSED, 0);
        if (cs->next_install <= c)
            cs->next_install = c + 1;
    }
    if (!installed(w, c)) {
        if (w != RING_MAPW(c, RING_MAP_REFUSED, 0)) {
            /* Neither free, installed nor refused for c: corrupt. */
            RING_COUNT(cs->corrupt);
            /* Release, as every map word the consumer writes: a producer
             * reading it (acquire) sees a chunk nobody may write. */
            atomic_store_explicit(&r->map[c & r->mmask], RING_MAPW(c, RING_MAP_REFUSED, 0),
                                  memory_order_release);
        }
        RING_COUNT(cs->refused_chunks);
        cs->head = cend;
        passed_chunks(r, c);
        return MOVED;
    }
    uint32_t p = RING_MAPW_PHYS(w);
    _Atomic uint8_t *st = ring_state(r, p);
    uint64_t u = (h - c * r->S) / RING_UNIT;
    /* Acquire: pairs with the producer's commit exchange. */
    if (atomic_load_explicit(&st[u], memory_order_acquire) == RING_ST_HEAD) {
        MPSCQ_HB_AFTER(&st[u]);
        uint64_t end;
        int rc = take_record(r, h, h - c * r->S, p, buf, cap, len, &end);
        if (rc == STUCK) {
            cs->head = h + RING_UNIT;   /* skip the corrupt unit */
        } else if (rc == MPSCQ_OK) {
            cs->head = end;
        } else {
            return rc;
        }
        if (cs->head >= cend)
            passed_chunks(r, c);
        return rc == STUCK ? MOVED : rc;
    }
    /* Not committed: pass it when something after it is (lazy passing),
     * or when the chunk ends, or when the ring is closed for good. */
    uint64_t lim = cs->limit < cend ? cs->limit : cend;
    uint64_t n = h + RING_UNIT;
    while (n < lim && atomic_load_explicit(&st[(n - c * r->S) / RING_UNIT], memory_order_acquire) != RING_ST_HEAD)
        n += RING_UNIT;
    if (n > lim)
        n = lim;
    if (n == lim && lim != cend && lim != final_end)
        return STUCK;                  /* nothing committed after it yet */
    if (gap_add(r, h, n) == STUCK)
        return STUCK;
    cs->head = n;
    if (n >= cend)
        passed_chunks(r, c);
    return MOVED;
}

/* The main scan has reached its limit and nothing is passed: the record
 * at head, if it is committed, is read without a load of tail, whose line
 * every claim writes (a consumer that keeps up would otherwise pull it
 * away from the producers once per message).  Its claim's fetch-and-add
 * came before its commit exchange, which the acquire load of its state
 * byte reads, so tail already covers its end and the limit moves there;
 * with no range passed, no earlier record of any producer is waiting
 * (ring-design.md s. 4).  1 with the status in *rc; 0 when tail is to be
 * loaded after all (a corrupt header too: the main scan counts and skips
 * it, below a limit that a tail value bounds). */
static int ahead_step(struct mpscq_ring *r, void *buf, size_t cap, size_t *len, int *rc)
{
    struct ring_consumer *cs = r->cs;
    uint64_t h = cs->head, c = ring_chunk(r, h), cend = (c + 1) * r->S;
    /* No gap: the oldest chunk not retired is the head's, c (main_step's
     * test c >= oldest + M cannot hold). */
    uint64_t w = mapw(r, c);
    if (!installed(w, c))
        return 0;
    uint32_t p = RING_MAPW_PHYS(w);
    _Atomic uint8_t *st = ring_state(r, p);
    uint64_t u = (h - c * r->S) / RING_UNIT;
    /* Acquire: pairs with the producer's commit exchange. */
    if (atomic_load_explicit(&st[u], memory_order_acquire) != RING_ST_HEAD)
        return 0;
    MPSCQ_HB_AFTER(&st[u]);
    const uint8_t *rec = ring_data(r, p) + (h - c * r->S);
    struct ring_rec hd;
    if (!rec_ok(r, h, rec, &hd))
        return 0;
    uint64_t end;
    int k = rec_take(r, h, rec, &hd, buf, cap, len, &end);
    if (k == MPSCQ_OK) {
        cs->head = end;
        if (end > cs->limit)
            cs->limit = end;
        if (end >= cend)
            passed_chunks(r, c);
    }
    *rc = k;
    return 1;
}

/* ---- the sweep: claims whose owner died ----------------------------------- */

static void sweep(struct mpscq_ring *r)
{
    struct ring_consumer *cs = r->cs;
    uint64_t live[RING_SLOTS];
    unsigned nlive = 0;
    for (uint32_t i = 0; i < r->P && i < RING_SLOTS; i++) {
        struct ring_slot *sl = &r->slots[i];
        /* seq_cst loads: ordered after the tail loads that made the gaps
         * (ring-design.md s. 4, "Dead claims"). */
        uint64_t o = atomic_load_explicit(&sl->owner, memory_order_seq_cst);
        if (!o)
            continue;
        uint64_t cl = atomic_load_explicit(&sl->claim, memory_order_seq_cst);
        if (cl == RING_CLAIM_IDLE)
            continue;   /* keeps no gap alive; a producer short of slots
                         * frees it if its owner is dead (slot_take) */
        /* Relaxed: the owner's release store published it (the owner
         * load above is seq_cst, an acquire). */
        uint64_t start = atomic_load_explicit(&sl->start_time, memory_order_relaxed);
        if (!mpscq_ring_owner_alive(o, start)) {
            /* The owner is gone: its claim will never commit.  Take the
             * slot from that owner first (TAKING: alive to everyone else
             * meanwhile), so that a claim word of a thread that took the
             * slot after we looked is never touched; then free it. */
            if (atomic_compare_exchange_strong_explicit(&sl->owner, &o, RING_OWNER_TAKING,
                                                        memory_order_acq_rel,
                                                        memory_order_relaxed)) {
                atomic_store_explicit(&sl->claim, RING_CLAIM_IDLE, memory_order_relaxed);
                /* Release: the idle claim before the free owner word. */
                atomic_store_explicit(&sl->owner, 0, memory_order_release);
            }
            continue;
        }
        live[nlive++] = cl;
    }
    for (uint32_t i = 0; i < r->ng;) {
        struct ring_gap g = r->gaps[i];
        uint64_t c = ring_chunk(r, g.start);
        if (g.start >= g.end || ring_chunk(r, g.end - 1) != c) {
            RING_COUNT(cs->corrupt);              /* not a range inside one chunk */
            gap_delete(r, i);
            continue;
        }
        int alive = 0;
        for (unsigned k = 0; k < nlive && !alive; k++) {
            uint64_t cl = live[k];
            if (cl & RING_CLAIM_PENDING)
                alive = (cl & ~RING_CLAIM_PENDING) <= c;
            else
                alive = cl < g.end && cl + r->max_rec > g.start;
        }
        if (!alive) {
            /* Committed since we looked?  Then the pass delivers it. */
            uint64_t w = mapw(r, c);
            int head = 0;
            if (installed(w, c)) {
                _Atomic uint8_t *st = ring_state(r, RING_MAPW_PHYS(w));
                for (uint64_t pos = g.start; pos < g.end && !head; pos += RING_UNIT)
                    head = atomic_load_explicit(&st[(pos - c * r->S) / RING_UNIT],
                                                memory_order_seq_cst) == RING_ST_HEAD;
            }
            if (!head) {
                RING_COUNT(cs->dropped_claims);
                gap_delete(r, i);
                if (c < ring_chunk(r, cs->head) && !chunk_has_gap(r, c))
                    retire(r, c);
                continue;
            }
        }
        i++;
    }
    install_free(r);
}

/* ---- read ------------------------------------------------------------------ */

/* The consumer's state in the region is plausible: counts in range, the
 * head at most a chunk and a record past the limit.  (The limit is
 * checked against tail where tail is loaded anyway: reading the
 * producers' line on every call would cost a cache miss per message.) */
/* How far a tail may be ahead of the consumer's head: M chunk numbers
 * installed or refused ahead, and a record from each producer that
 * passed its pre-check, up to max_rec each (ring-design.md s. 6). */
static inline uint64_t tail_reach(const struct mpscq_ring *r)
{
    return (r->M + 2) * r->S + (r->P + 1) * r->max_rec;
}

static int consumer_ok(const struct mpscq_ring *r)
{
    const struct ring_consumer *cs = r->cs;
    uint64_t h = cs->head, l = cs->limit;
    /* The head at most a chunk and a record past the limit (a refused
     * chunk or a record's end moves it there), and the limit no further
     * ahead of the head than a tail may be (read_one's check of a loaded
     * tail): the first scan of a call runs on the stored limit, before any
     * tail load, and would otherwise walk up to a garbage limit one
     * refused chunk a step.  Differences, not sums: no overflow. */
    return cs->ngaps <= r->G && cs->nfree <= r->K &&
           (h <= l || h - l <= r->S + r->max_rec) &&
           (l <= h || l - h <= tail_reach(r));
}

/* The consumer's counts into the handle for one call, and back. */
static int counts_load(struct mpscq_ring *r)
{
    if (!consumer_ok(r))
        return 0;
    r->ng = r->cs->ngaps;
    r->nf = r->cs->nfree;
    return 1;
}
static void counts_store(struct mpscq_ring *r)
{
    r->cs->ngaps = r->ng;
    r->cs->nfree = r->nf;
}

static int read_one(struct mpscq_ring *r, void *buf, size_t cap, size_t *len);

/* The chunk c of a record that mpscq_ring_peek handed out is released:
 * retire it if it is behind the head with nothing passed in it (only a
 * held chunk is left so; anything else in cs->held, which the region
 * may hold garbage in, is not retired: retire() also checks that c's map
 * word is c's and installed). */
static void unhold(struct mpscq_ring *r, uint64_t c)
{
    struct ring_consumer *cs = r->cs;
    cs->held = 0;
    if (c < ring_chunk(r, cs->head) && !chunk_has_gap(r, c))
        retire(r, c);
    install_free(r);
}

/* One consumer call: the counts in, a read (or a peek's take), the sweep
 * when installing is stuck, the counts out. */
static int consume(struct mpscq_ring *r, void *buf, size_t cap,
                                       size_t *len)
{
    /* Any call releases the record this handle held (a peek that holds
     * one does not get here), even one that finds the consumer state
     * corrupt; and a chunk still held in the region, ours or a consumer's
     * that never released it (it detached or died between peek and
     * release), is retired now. */
    r->held = 0;
    if (!counts_load(r))
        return MPSCQ_INVAL;
    if (MPSCQ_UNLIKELY(r->cs->held))
        unhold(r, r->cs->held - 1);
    int rc = read_one(r, buf, cap, len);
    /* Installing stopped at a pinned chunk's M-th successor while chunks
     * are free: producers are (or soon will be) refused.  Look for dead
     * claims at once, once per such oldest chunk. */
    struct ring_consumer *cs = r->cs;
    if (r->ng && r->nf && cs->next_install >= oldest(r) + r->M &&
        cs->swept_oldest != oldest(r) + 1) {
        cs->swept_oldest = oldest(r) + 1;
        sweep(r);
    }
    counts_store(r);
    return rc;
}

/* ---- the consumer role (ring-design.md s. 5) ---------------------------
 *
 * Every consumer call runs between consumer_enter and consumer_leave: a
 * compare-and-swap of the region's owner word from 0 to this thread's
 * word, and a store of 0.  A call that finds the word taken by a live
 * thread (or by itself: a signal handler calling in) returns MPSCQ_BUSY
 * and has changed nothing; a dead owner's place is taken
 * (ring_owner.c).  The waits hold the role while they sleep. */
static inline int consumer_enter(struct mpscq_ring *r)
{
    uint64_t o = 0, me = mpscq_ring_me.consumer;
    /* Acquire: pairs with the previous consumer's release in
     * consumer_leave, so that its writes to the consumer state come
     * before this call's reads in any process.  One locked instruction
     * per call, on the consumer state's own line.  me is 0 until the
     * thread's first call, which the slow path computes it in. */
    if (MPSCQ_LIKELY(me != 0) &&
        MPSCQ_LIKELY(atomic_compare_exchange_strong_explicit(&r->cs->owner, &o, me,
                                                             memory_order_acquire,
                                                             memory_order_relaxed))) {
        MPSCQ_HB_AFTER(&r->cs->owner);
        mpscq_ring_me.inside++;
        MPSCQ_TEST_HOOK(MPSCQ_HOOK_RING_CONSUMER_IN, NULL, 0);
        return MPSCQ_OK;
    }
    return mpscq_ring_consumer_enter_slow(r);   /* counts itself in, as above */
}
static inline void consumer_leave(struct mpscq_ring *r)
{
    mpscq_ring_me.inside--;
    /* Release: this call's writes to the consumer state before the next
     * consumer's acquire. */
    MPSCQ_HB_BEFORE(&r->cs->owner);
    atomic_store_explicit(&r->cs->owner, 0, memory_order_release);
}

/* The calls' bodies, inside the role. */
static int release_in(struct mpscq_ring *r)
{
    if (!r->held)
        return MPSCQ_INVAL;
    r->held = 0;
    /* Retired only while the region names our chunk: when the record did
     * not end it, `held` is not ours; when another handle consumed
     * meanwhile, it has retired our chunk already and may name a chunk of
     * its own, which must stay for whoever consumes next
     * (test_peek_stale_release).  Consumer state that fails its checks:
     * every read says INVAL from now on anyway. */
    if (r->cs->held == r->hold_c + 1 && counts_load(r)) {
        unhold(r, r->hold_c);
        counts_store(r);
    }
    return MPSCQ_OK;
}

static int peek_in(struct mpscq_ring *r, const void **data, size_t *len)
{
    if (!r->held) {
        int rc = consume(r, NULL, SIZE_MAX, &r->peek_len);
        if (rc != MPSCQ_OK)
            return rc;
    }
    *data = r->peek_data;
    *len = r->peek_len;
    return MPSCQ_OK;
}

int mpscq_ring_release(mpscq_ring_t *r)
{
    /* Nothing held is release_in's INVAL: r->held is read inside the
     * role, where no other thread of this handle writes it. */
    if (!r)
        return MPSCQ_INVAL;
    int rc = consumer_enter(r);
    if (rc != MPSCQ_OK)
        return rc;
    rc = release_in(r);
    consumer_leave(r);
    return rc;
}

/* flatten: every helper inlined here.  mpscq_ring_peek calls the same
 * ones, and with two callers GCC left rec_take, counts_load, read_one
 * and ahead_step out of line: 409 instructions per write+read pair at 64
 * bytes against 350 before the peek (callgrind, bench/pair-asm ring
 * 100000 64); flattened, 360. */
__attribute__((flatten)) int mpscq_ring_read(mpscq_ring_t *r, void *buf, size_t cap, size_t *len)
{
    if (!r || !buf || !len)
        return MPSCQ_INVAL;
    int rc = consumer_enter(r);
    if (MPSCQ_UNLIKELY(rc != MPSCQ_OK))
        return rc;
    rc = consume(r, buf, cap, len);   /* releases a held record */
    consumer_leave(r);
    return rc;
}

static int read_one(struct mpscq_ring *r, void *buf, size_t cap, size_t *len)
{
    struct ring_consumer *cs = r->cs;
    int reloaded = 0, caught_up = 0;
    uint64_t final_end = RING_UNKNOWN;
    for (;;) {
        if (cs->pass_active) {
            int rc = gap_pass(r, buf, cap, len);
            if (rc != MPSCQ_EMPTY)
                return rc;
        }
        while (cs->head < cs->limit) {
            int rc = main_step(r, final_end, buf, cap, len);
            if (rc == STUCK) {
                /* Catch-up: after a fresh tail, with nothing passed, the
                 * claim at head is almost always a producer a few
                 * instructions from its commit.  Give it
                 * MPSCQ_CATCH_UP_NS once per call, touching none of its
                 * lines, then look again; reading on at once would pass
                 * it (a gap) or say EMPTY and poll tail.  Bounded: a
                 * stopped producer costs each such call this much. */
                if (reloaded && !caught_up && !r->ng) {
                    caught_up = 1;
                    mpscq_spin_ns(MPSCQ_CATCH_UP_NS);
                    MPSCQ_TEST_HOOK(MPSCQ_HOOK_RING_CATCH_UP, NULL, cs->head);
                    continue;
                }
                break;
            }
            if (rc != MOVED) {
                cs->empty_reads = 0;
                return rc;
            }
        }
        if (reloaded)
            break;
        if (!r->ng && !cs->pass_active && cs->head >= cs->limit) {
            int rc;
            if (ahead_step(r, buf, cap, len, &rc)) {
                cs->empty_reads = 0;
                return rc;
            }
        }
        reloaded = 1;
        /* Acquire: every claim below t was made before this load, and the
         * PENDING word and the commits that preceded it are visible
         * (release sequence of the fetch-and-adds). */
        uint64_t t = atomic_load_explicit(&r->sh->tail, memory_order_acquire);
        uint64_t tl = t & ~RING_CLOSED;
        if (t & RING_CLOSED) {
            /* Acquire: the closer's release; UNKNOWN until it stores. */
            uint64_t cp = atomic_load_explicit(&r->sh->close_pos, memory_order_acquire);
            if (cp != RING_UNKNOWN && cp <= tl) {
                final_end = cp;
                tl = cp;
            }
        }
        /* A tail further ahead than installed and refused chunks can put
         * it (M chunk numbers, and a record from each producer that passed
         * its pre-check, up to max_rec each), or behind the
         * limit (a tail value seen before: tail only grows), is corrupt:
         * say so rather than walk towards it. */
        if (tl > cs->head + tail_reach(r) ||
            cs->limit > (t & ~RING_CLOSED))
            return MPSCQ_INVAL;
        if (tl > cs->limit)
            cs->limit = tl;
        /* A claim refused after the close may have raised the limit past
         * the close position before the closer stored it: nothing past it
         * is ever written, and the scan must pass what is open below it. */
        if (final_end != RING_UNKNOWN && cs->limit > final_end)
            cs->limit = final_end;
        if (r->ng) {
            cs->pass_active = 1;
            cs->pass_pos = 0;
        }
    }
    if (final_end != RING_UNKNOWN && cs->head >= final_end && !cs->pass_active)
        return MPSCQ_CLOSED;
    /* Sweep now and then while ranges are passed. */
    if (r->ng && ++cs->empty_reads % SWEEP_EVERY == 0)
        sweep(r);
    return MPSCQ_EMPTY;
}

/* One read, or one peek (data != NULL): mpscq_wait_spin's take, and what
 * the waits below repeat. */
struct ring_take {
    struct mpscq_ring *r;
    void *buf;
    size_t cap;
    size_t *len;
    const void **data;
};
static int take(const struct ring_take *t)
{
    return t->data ? peek_in(t->r, t->data, t->len) : consume(t->r, t->buf, t->cap, t->len);
}
static int ring_take(void *ctx, void **unused)
{
    (void)unused;
    return take(ctx);
}

/* mpscq_ring_read_wait and mpscq_ring_peek_wait, after a first take that
 * found nothing. */
static int take_wait(const struct ring_take *t, long long timeout_ns)
{
    struct mpscq_ring *r = t->r;
    uint64_t deadline = mpscq_deadline(timeout_ns);
    /* Spin first, as mpscq_dequeue_wait does (wait.c): a message is often
     * a write away, and a consumer that sleeps at once makes every
     * message a FUTEX_WAKE.  But first pause MPSCQ_RING_WAIT_FIRST_NS and
     * look once: a consumer that keeps up with a stream and polls back to
     * back reads tail's and the state bytes' lines between the producers'
     * messages, and each producer's fetch-and-add and commit exchange then
     * waits for its line to come back (one producer, 64-byte messages:
     * 4-5 million/s polling, 15-20 with the pause; doc/performance.md).
     * Paused, it finds a run of messages and reads lines the producers
     * have left.  At most the timeout. */
    uint64_t first = MPSCQ_RING_WAIT_FIRST_NS;
    if (timeout_ns > 0 && (uint64_t)timeout_ns < first)
        first = (uint64_t)timeout_ns;
    mpscq_spin_ns((unsigned)first);
    int rc = take(t);
    if (rc != MPSCQ_EMPTY)
        return rc;
    /* The spin within what is left of the timeout after the pause (a
     * timeout of a few us was overrun by up to itself again). */
    long long left = timeout_ns;
    if (deadline != UINT64_MAX) {
        uint64_t now = mpscq_mono_ns();
        left = now >= deadline ? 0 : (long long)(deadline - now);
    }
    if (left != 0) {
        rc = mpscq_wait_spin(&r->wait_spin_ns, left, ring_take, (void *)t, NULL);
        if (rc != MPSCQ_EMPTY)
            return rc;
    }
    for (;;) {
        if (r->cs->ngaps && counts_load(r)) {
                    sweep(r);
            counts_store(r);
        }
        /* The futex value first, then `sleeping`: a waker acts only on
         * `sleeping` = 1, so its bump of wake_seq comes after this load and
         * the FUTEX_WAIT below returns at once.  (The other order loses a
         * wake-up: a waker between the two resets `sleeping` and bumps the
         * value this load then reads, and nobody wakes us again.) */
        uint32_t seq = atomic_load_explicit(&r->sh->wake_seq, memory_order_seq_cst);
        /* seq_cst store and fence: the consumer's side of the Dekker pair
         * with the producer's commit exchange and its load of `sleeping`:
         * either the read below sees the HEAD, or the producer sees 1. */
        atomic_store_explicit(&r->sh->sleeping, 1, memory_order_seq_cst);
        atomic_thread_fence(memory_order_seq_cst);
        MPSCQ_TEST_HOOK(MPSCQ_HOOK_RING_PARK, NULL, seq);
        rc = take(t);
        if (rc != MPSCQ_EMPTY) {
            /* Relaxed (here and below): awake again; a producer that still
             * reads 1 only pays a needless wake. */
            atomic_store_explicit(&r->sh->sleeping, 0, memory_order_relaxed);
            return rc;
        }
        /* However the wait ends (a signal too), look again. */
        if (mpscq_futex_wait_shared(&r->sh->wake_seq, seq, deadline) == MPSCQ_TIMEOUT) {
            atomic_store_explicit(&r->sh->sleeping, 0, memory_order_relaxed);
            return MPSCQ_TIMEOUT;
        }
        rc = take(t);
        if (rc != MPSCQ_EMPTY) {
            atomic_store_explicit(&r->sh->sleeping, 0, memory_order_relaxed);
            return rc;
        }
    }
}

/* The waits: the first take, then take_wait, all inside the role. */
static int take_first_wait(const struct ring_take *t, long long timeout_ns)
{
    int rc = consumer_enter(t->r);
    if (rc != MPSCQ_OK)
        return rc;
    rc = take(t);
    if (rc == MPSCQ_EMPTY && timeout_ns != 0)
        rc = take_wait(t, timeout_ns);
    consumer_leave(t->r);
    return rc;
}

int mpscq_ring_read_wait(mpscq_ring_t *r, void *buf, size_t cap, size_t *len,
                         long long timeout_ns)
{
    if (!r || !buf || !len)
        return MPSCQ_INVAL;
    struct ring_take t = { r, buf, cap, len, NULL };
    return take_first_wait(&t, timeout_ns);
}

int mpscq_ring_peek(mpscq_ring_t *r, const void **data, size_t *len)
{
    return mpscq_ring_peek_wait(r, data, len, 0);
}

int mpscq_ring_peek_wait(mpscq_ring_t *r, const void **data, size_t *len, long long timeout_ns)
{
    if (!r || !data || !len)
        return MPSCQ_INVAL;
    struct ring_take t = { r, NULL, 0, len, data };
    return take_first_wait(&t, timeout_ns);
}
