/*
 * ring_write.c - mpscq_ring's producers: a slot per thread, the claim
 * (one fetch-and-add), the commit (who a thread is, and whether an owner
 * is alive: ring_owner.c).  doc/ring-design.md s. 3 gives the
 * argument; the consumer is ring_read.c.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "ring.h"
#include "wait.h"


/* ---- the thread's slot ------------------------------------------------- */

#define TLS_CACHE 4
static _Thread_local struct {
    uint64_t id;
    uint32_t epoch;
    struct ring_reg *reg;
} reg_cache[TLS_CACHE] MPSCQ_TLS_MODEL;   /* initial-exec: no __tls_get_addr call */
static _Thread_local unsigned reg_victim MPSCQ_TLS_MODEL;

/* Take a free slot, or one whose owner died with no claim open (a claim
 * of a dead owner is the consumer's to drop first). */
static int slot_take(struct mpscq_ring *r, uint64_t me, int reclaim)
{
    for (uint32_t i = 0; i < r->P; i++) {
        struct ring_slot *sl = &r->slots[i];
        /* Acquire: the previous owner's release of the slot, and the
         * start time stored before the owner word. */
        uint64_t o = atomic_load_explicit(&sl->owner, memory_order_acquire);
        if (o != 0) {
            if (!reclaim ||
                atomic_load_explicit(&sl->claim, memory_order_acquire) != RING_CLAIM_IDLE ||
                mpscq_ring_owner_alive(o, atomic_load_explicit(&sl->start_time,
                                                               memory_order_relaxed)))
                continue;
        }
        /* acq_rel: the winner owns the slot.  TAKING first: until the
         * start time below is stored, the slot is alive to a sweep, which
         * would otherwise judge this owner by the previous one's time. */
        if (atomic_compare_exchange_strong_explicit(&sl->owner, &o, me | RING_OWNER_TAKING,
                                                    memory_order_acq_rel,
                                                    memory_order_acquire)) {
            /* Relaxed: published by the release store of owner below. */
            atomic_store_explicit(&sl->start_time, mpscq_ring_self()->start_time,
                                  memory_order_relaxed);
            atomic_store_explicit(&sl->claim, RING_CLAIM_IDLE, memory_order_relaxed);
            atomic_store_explicit(&sl->owner, me, memory_order_release);
            return (int)i;
        }
    }
    return -1;
}

/* Out of line and cold: the public calls' fast paths then need no frame
 * (their only call is the tail call to a fast path). */
static __attribute__((noinline, cold)) struct ring_reg *reg_slow(struct mpscq_ring *r)
{
    const struct ring_self *self = mpscq_ring_self();
    pthread_mutex_lock(&r->lock);
    struct ring_reg *g = r->regs;
    while (g && g->tid != self->tid)
        g = g->next;
    if (!g) {
        uint64_t me = (uint64_t)(uint32_t)self->pid << 32 | (uint32_t)self->tid;
        int s = slot_take(r, me, 0);
        if (s < 0)
            s = slot_take(r, me, 1);
        g = s < 0 ? NULL : calloc(1, sizeof *g);
        if (!g && s >= 0) {
            atomic_store_explicit(&r->slots[s].owner, 0, memory_order_release);
        } else if (g) {
            g->tid = self->tid;
            g->slot = (uint32_t)s;
            g->next = r->regs;
            r->regs = g;
            /* The destructor releases the slot when the thread exits. */
            mpscq_ring_watch_exit();
        }
    }
    pthread_mutex_unlock(&r->lock);
    if (g) {
        unsigned v = reg_victim++ % TLS_CACHE;
        reg_cache[v].id = r->id;
        reg_cache[v].epoch = atomic_load_explicit(&mpscq_ring_fork_epoch, memory_order_relaxed);
        reg_cache[v].reg = g;
    }
    return g;
}

/* This thread's registration with r from its cache, or NULL. */
static inline struct ring_reg *reg_cached(const struct mpscq_ring *r)
{
    uint32_t e = atomic_load_explicit(&mpscq_ring_fork_epoch, memory_order_relaxed);
    for (int i = 0; i < TLS_CACHE; i++)
        if (reg_cache[i].id == r->id && reg_cache[i].epoch == e)
            return reg_cache[i].reg;
    return NULL;
}


/* detach: every registration of this handle gives its slot back. */
void mpscq_ring_regs_release(struct mpscq_ring *r)
{
    pthread_mutex_lock(&r->lock);
    while (r->regs) {
        struct ring_reg *g = r->regs;
        r->regs = g->next;
        struct ring_slot *sl = &r->slots[g->slot];
        /* Release, both: the claim is idle before the owner word frees
         * the slot, and whoever takes it (acquire CAS) sees both. */
        atomic_store_explicit(&sl->claim, RING_CLAIM_IDLE, memory_order_release);
        atomic_store_explicit(&sl->owner, 0, memory_order_release);
        free(g);
    }
    pthread_mutex_unlock(&r->lock);
}

/* ---- claim and commit -------------------------------------------------- */

static void note_full(struct mpscq_ring *r)
{
    atomic_fetch_add_explicit(&r->sh->full_count, 1, memory_order_relaxed);
    /* A consumer asleep may be the one to free space (dead claims are
     * swept when it looks): wake it.  Relaxed: a hint. */
    if (atomic_load_explicit(&r->sh->sleeping, memory_order_relaxed))
        mpscq_ring_wake(r);
}

/* The claim, whole, from the pre-check on: the continuation of the fast
 * path when the pre-check did not pass (ring-design.md s. 3). */
int mpscq_ring_claim_slow(struct mpscq_ring *r, struct ring_reg *g, size_t len)
{
    struct ring_slot *sl = &r->slots[g->slot];
    const uint64_t S = r->S;
    uint64_t reclen = ring_round_unit(RING_HDR + len);

    /* Pre-check: claim only when the chunk under tail is installed, so a
     * full ring costs no claim.  Acquire on both: the map word's install
     * (consumer, release CAS) makes the chunk's zeroed states visible. */
    uint64_t t = atomic_load_explicit(&r->sh->tail, memory_order_acquire);
    if (t & RING_CLOSED)
        return MPSCQ_CLOSED;
    uint64_t c0 = ring_chunk(r, t);
    uint64_t w = atomic_load_explicit(&r->map[c0 & r->mmask], memory_order_acquire);
    if (w != RING_MAPW(c0, RING_MAP_INSTALLED, RING_MAPW_PHYS(w))) {
        /* The rest of a chunk that will never be installed (refused, or
         * refused and already passed by the consumer, its word now FREE
         * for c0 + M) is skipped: one CAS moves tail to the next chunk's
         * start when that one is installed.  Chunks are installed in
         * order, so c0 + 1 installed means c0 never will be. */
        uint64_t w1 = atomic_load_explicit(&r->map[(c0 + 1) & r->mmask], memory_order_acquire);
        /* Look at c0 again after c0 + 1: if c0 was installed between the
         * two loads, claim in it rather than skip its installed rest. */
        w = atomic_load_explicit(&r->map[c0 & r->mmask], memory_order_acquire);
        if (w == RING_MAPW(c0, RING_MAP_INSTALLED, RING_MAPW_PHYS(w)))
            goto claim;
        if (w1 != RING_MAPW(c0 + 1, RING_MAP_INSTALLED, RING_MAPW_PHYS(w1))) {
            note_full(r);
            return MPSCQ_FULL;
        }
        /* seq_cst, as every RMW on tail; failure: someone moved it. */
        atomic_compare_exchange_strong_explicit(&r->sh->tail, &t, (c0 + 1) * S,
                                                memory_order_seq_cst, memory_order_relaxed);
        t = atomic_load_explicit(&r->sh->tail, memory_order_acquire);
        if (t & RING_CLOSED)
            return MPSCQ_CLOSED;
        c0 = ring_chunk(r, t);
        w = atomic_load_explicit(&r->map[c0 & r->mmask], memory_order_acquire);
        if (w != RING_MAPW(c0, RING_MAP_INSTALLED, RING_MAPW_PHYS(w))) {
            note_full(r);
            return MPSCQ_FULL;
        }
    }
claim:
    MPSCQ_TEST_HOOK(MPSCQ_HOOK_RING_PRECHECKED, NULL, t);
    /* Release (a plain store on x86): the fetch-and-add below is a
     * release too, so a consumer whose tail load (acquire) covers this
     * claim sees PENDING or later; and a sweep that reads this word sees
     * the thread's earlier commit (ring-design.md s. 4). */
    atomic_store_explicit(&sl->claim, RING_CLAIM_PENDING | c0, memory_order_release);
    /* seq_cst: the one locked instruction of the common case; it orders
     * PENDING before the claim and the claim in tail's single order
     * (linearization point of the write). */
    uint64_t pos = atomic_fetch_add_explicit(&r->sh->tail, reclen, memory_order_seq_cst);
    MPSCQ_TEST_HOOK(MPSCQ_HOOK_RING_CLAIMED, NULL, pos);
    return mpscq_ring_claim_after(r, g, len, pos);
}

/* After the fetch-and-add: pos is this thread's claim (the slot's claim
 * word says PENDING).  Closed, a chunk not installed (refused here or by
 * another producer), or installed: the claim is recorded. */
int mpscq_ring_claim_after(struct mpscq_ring *r, struct ring_reg *g, size_t len, uint64_t pos)
{
    struct ring_slot *sl = &r->slots[g->slot];
    if (pos & RING_CLOSED) {
        atomic_store_explicit(&sl->claim, RING_CLAIM_IDLE, memory_order_release);
        return MPSCQ_CLOSED;
    }
    uint64_t c = ring_chunk(r, pos);
    uint64_t w = atomic_load_explicit(&r->map[c & r->mmask], memory_order_acquire);
    if (w == RING_MAPW(c, RING_MAP_FREE, 0)) {
        /* No physical chunk for c yet: refuse c (the consumer skips it
         * whole).  acq_rel; on failure w is what the consumer installed. */
        if (atomic_compare_exchange_strong_explicit(&r->map[c & r->mmask], &w,
                                                    RING_MAPW(c, RING_MAP_REFUSED, 0),
                                                    memory_order_acq_rel, memory_order_acquire))
            w = RING_MAPW(c, RING_MAP_REFUSED, 0);
    }
    if (w != RING_MAPW(c, RING_MAP_INSTALLED, RING_MAPW_PHYS(w)) || RING_MAPW_PHYS(w) >= r->K) {
        atomic_store_explicit(&sl->claim, RING_CLAIM_IDLE, memory_order_release);
        note_full(r);
        return MPSCQ_FULL;
    }
    MPSCQ_HB_AFTER(&r->map[c & r->mmask]);      /* the consumer's install */
    /* Relaxed: a refinement of PENDING for the consumer's sweep. */
    atomic_store_explicit(&sl->claim, pos, memory_order_relaxed);
    g->open_buf = ring_claim_record(r, pos, c, RING_MAPW_PHYS(w), len, &g->open_state);
    return MPSCQ_OK;
}

int mpscq_ring_write_slow(struct mpscq_ring *r, struct ring_reg *g, const void *data, size_t len)
{
    int rc = mpscq_ring_claim_slow(r, g, len);
    if (rc)
        return rc;
    memcpy(g->open_buf, data, len);
    return mpscq_ring_publish_base(r, g);
}

int mpscq_ring_write_after(struct mpscq_ring *r, struct ring_reg *g, const void *data, size_t len,
                           uint64_t pos)
{
    int rc = mpscq_ring_claim_after(r, g, len, pos);
    if (rc)
        return rc;
    memcpy(g->open_buf, data, len);
    return mpscq_ring_publish_base(r, g);
}

int mpscq_ring_wake_ok(struct mpscq_ring *r)
{
    mpscq_ring_wake(r);
    return MPSCQ_OK;
}

/* The public calls: the registration from the cache and a tail call to
 * the fast path; a thread not in the cache goes through the cold
 * versions, so that the common case keeps no frame. */
static __attribute__((noinline, cold)) int reserve_unregistered(struct mpscq_ring *r, size_t len,
                                                                 void **buf)
{
    struct ring_reg *g = reg_slow(r);
    if (!g)
        return MPSCQ_NOMEM;
    if (g->open_buf)
        return MPSCQ_INVAL;
    int rc = mpscq_ring_claim(r, g, len);
    if (rc == MPSCQ_OK)
        *buf = g->open_buf;
    return rc;
}

int mpscq_ring_reserve(mpscq_ring_t *r, size_t len, void **buf)
{
    if (!r || !buf || len == 0 || len > r->max_message)
        return MPSCQ_INVAL;
    struct ring_reg *g = reg_cached(r);
    if (MPSCQ_UNLIKELY(!g))
        return reserve_unregistered(r, len, buf);
    if (g->open_buf)
        return MPSCQ_INVAL;         /* one open claim per thread */
    int rc = mpscq_ring_claim(r, g, len);
    if (rc == MPSCQ_OK)
        *buf = g->open_buf;
    return rc;
}

static __attribute__((noinline, cold)) int commit_uncached(struct mpscq_ring *r, void *buf)
{
    /* Evicted from the cache by other rings since the reserve: the
     * handle's list has it. */
    struct ring_reg *g = reg_slow(r);
    if (!g || g->open_buf != buf)
        return MPSCQ_INVAL;
    return mpscq_ring_publish(r, g);
}

int mpscq_ring_commit(mpscq_ring_t *r, void *buf)
{
    if (!r || !buf)
        return MPSCQ_INVAL;
    struct ring_reg *g = reg_cached(r);
    if (MPSCQ_UNLIKELY(!g))
        return commit_uncached(r, buf);
    if (g->open_buf != buf)
        return MPSCQ_INVAL;
    return mpscq_ring_publish(r, g);
}

static __attribute__((noinline, cold)) int write_unregistered(struct mpscq_ring *r,
                                                               const void *data, size_t len)
{
    struct ring_reg *g = reg_slow(r);
    if (!g)
        return MPSCQ_NOMEM;
    if (g->open_buf)
        return MPSCQ_INVAL;
    return mpscq_ring_write_fast(r, g, data, len);
}

int mpscq_ring_write(mpscq_ring_t *r, const void *data, size_t len)
{
    if (!r || !data || len == 0 || len > r->max_message)
        return MPSCQ_INVAL;
    struct ring_reg *g = reg_cached(r);
    if (MPSCQ_UNLIKELY(!g))
        return write_unregistered(r, data, len);
    if (g->open_buf)
        return MPSCQ_INVAL;         /* one open claim per thread */
    return mpscq_ring_write_fast(r, g, data, len);
}

/* ---- waiting for room ------------------------------------------------------ *
 *
 * A writer that finds FULL counts itself in space_waiters (seq_cst), loads
 * space_seq, fences (seq_cst) and tries again; only then does it
 * FUTEX_WAIT on the value it loaded.  The consumer, after each install
 * of a chunk (release CAS, ring_read.c install_free), fences (seq_cst)
 * and loads space_waiters: if anyone waits it bumps space_seq and wakes
 * them all.
 * Either the writer's try comes after the install in the fences' order
 * and sees the chunk (its claim succeeds), or the consumer's load comes
 * after the writer's count and it bumps space_seq, so the writer's
 * FUTEX_WAIT returns at once or is woken.  Close does the same after
 * setting the closed bit (its fetch_or is the store). */

void mpscq_ring_wake_space(struct mpscq_ring *r)
{
    /* seq_cst: the install (or close) before the load of the count. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&r->sh->space_waiters, memory_order_seq_cst)) {
        /* seq_cst: the bump before the wake, after the fence. */
        atomic_fetch_add_explicit(&r->sh->space_seq, 1, memory_order_seq_cst);
        /* Shared futex: the writers may be other processes. */
        mpscq_futex_wake_shared_all(&r->sh->space_seq);
    }
}

int mpscq_ring_write_wait(mpscq_ring_t *r, const void *data, size_t len, long long timeout_ns)
{
    int rc = mpscq_ring_write(r, data, len);
    if (rc != MPSCQ_FULL || timeout_ns == 0)
        return rc;
    uint64_t deadline = mpscq_deadline(timeout_ns);
    for (;;) {
        /* seq_cst, the three: one side of the Dekker pair above. */
        atomic_fetch_add_explicit(&r->sh->space_waiters, 1, memory_order_seq_cst);
        uint32_t seq = atomic_load_explicit(&r->sh->space_seq, memory_order_seq_cst);
        atomic_thread_fence(memory_order_seq_cst);
        rc = mpscq_ring_write(r, data, len);
        if (rc == MPSCQ_FULL) {
            MPSCQ_TEST_HOOK(MPSCQ_HOOK_RING_SPACE_WAIT, NULL, seq);
            /* However the wait ends (a signal too), look again. */
            if (mpscq_futex_wait_shared(&r->sh->space_seq, seq, deadline) == MPSCQ_TIMEOUT)
                rc = MPSCQ_TIMEOUT;
        }
        /* Relaxed: only the count matters, the next try is what orders. */
        atomic_fetch_sub_explicit(&r->sh->space_waiters, 1, memory_order_relaxed);
        if (rc != MPSCQ_FULL)
            return rc;
    }
}
