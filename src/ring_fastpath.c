/*
 * ring_fastpath.c - C11 twins of mpscq_ring's producer fast paths: the
 * claim, the publish (commit) and the whole write.  The NASM twins are
 * asm/x86_64/ring.asm; arch.h binds the generic names.  Everything that
 * is not the common case goes on in ring_write.c (ring.h names the
 * continuations); doc/ring-design.md s. 3 gives the argument.
 */
#include "config.h"

#include <string.h>

#include "arch.h"
#include "ring.h"

/* The claim's common case.  0: claimed at *pos, in an installed chunk,
 * the header written, *buf and *state name the payload and state byte.
 * 1: the pre-check did not pass (or tail is closed): nothing was done.
 * 2: the fetch-and-add returned *pos, closed or in a chunk not installed. */
static inline int claim_fast(struct mpscq_ring *r, struct ring_reg *g, size_t len, uint64_t *pos,
                             uint8_t **buf, _Atomic uint8_t **state)
{
    /* Acquire, both: the consumer's release CAS of the map word (the
     * chunk installed, its state bytes zeroed) is seen by the claim. */
    uint64_t t = atomic_load_explicit(&r->sh->tail, memory_order_acquire);
    if (MPSCQ_UNLIKELY(t & RING_CLOSED))
        return 1;
    uint64_t c0 = ring_chunk(r, t);
    uint64_t w = atomic_load_explicit(&r->map[c0 & r->mmask], memory_order_acquire);
    if (MPSCQ_UNLIKELY(w != RING_MAPW(c0, RING_MAP_INSTALLED, RING_MAPW_PHYS(w))))
        return 1;
    MPSCQ_TEST_HOOK(MPSCQ_HOOK_RING_PRECHECKED, NULL, t);
    struct ring_slot *sl = &r->slots[g->slot];
    /* Release: before the claim, for the sweep and the consumer
     * (ring_write.c, mpscq_ring_claim_slow, says why). */
    atomic_store_explicit(&sl->claim, RING_CLAIM_PENDING | c0, memory_order_release);
    /* seq_cst: the claim, the one locked instruction; the write's
     * linearization point. */
    uint64_t p = atomic_fetch_add_explicit(&r->sh->tail, ring_round_unit(RING_HDR + len),
                                           memory_order_seq_cst);
    MPSCQ_TEST_HOOK(MPSCQ_HOOK_RING_CLAIMED, NULL, p);
    *pos = p;
    if (MPSCQ_UNLIKELY(p & RING_CLOSED))
        return 2;
    uint64_t c = ring_chunk(r, p);
    /* Acquire: the install, as above. */
    w = atomic_load_explicit(&r->map[c & r->mmask], memory_order_acquire);
    if (MPSCQ_UNLIKELY(w != RING_MAPW(c, RING_MAP_INSTALLED, RING_MAPW_PHYS(w)) ||
                       RING_MAPW_PHYS(w) >= r->K))
        return 2;
    MPSCQ_HB_AFTER(&r->map[c & r->mmask]);
    /* Relaxed: a refinement of PENDING for the consumer's sweep. */
    atomic_store_explicit(&sl->claim, p, memory_order_relaxed);
    *buf = ring_claim_record(r, p, c, RING_MAPW_PHYS(w), len, state);
    return 0;
}

/* The commit of a claim whose state byte is st: HEAD, the slot idle, the
 * consumer woken if it sleeps. */
static inline int publish(struct mpscq_ring *r, struct ring_reg *g, _Atomic uint8_t *st)
{
    /* seq_cst (XCHG): publishes the record (release for the consumer's
     * acquire load of the state byte) and is the StoreLoad fence of the
     * Dekker pair with the consumer's `sleeping` (ring_read.c). */
    MPSCQ_HB_BEFORE(st);
    atomic_exchange_explicit(st, RING_ST_HEAD, memory_order_seq_cst);
    /* Release: a sweep that reads IDLE also sees HEAD. */
    atomic_store_explicit(&r->slots[g->slot].claim, RING_CLAIM_IDLE, memory_order_release);
    /* seq_cst (a plain load on x86): with the exchange above, one side of
     * the Dekker pair with read_wait's store of `sleeping` and its fence. */
    if (MPSCQ_UNLIKELY(atomic_load_explicit(&r->sh->sleeping, memory_order_seq_cst)))
        return mpscq_ring_wake_ok(r);
    return MPSCQ_OK;
}

int mpscq_ring_claim_base(struct mpscq_ring *r, struct ring_reg *g, size_t len)
{
    uint64_t pos;
    uint8_t *buf;
    _Atomic uint8_t *st;
    int k = claim_fast(r, g, len, &pos, &buf, &st);
    if (MPSCQ_UNLIKELY(k == 1))
        return mpscq_ring_claim_slow(r, g, len);
    if (MPSCQ_UNLIKELY(k == 2))
        return mpscq_ring_claim_after(r, g, len, pos);
    g->open_buf = buf;
    g->open_state = st;
    return MPSCQ_OK;
}

int mpscq_ring_publish_base(struct mpscq_ring *r, struct ring_reg *g)
{
    g->open_buf = NULL;
    return publish(r, g, g->open_state);
}

int mpscq_ring_write_base(struct mpscq_ring *r, struct ring_reg *g, const void *data, size_t len)
{
    uint64_t pos;
    uint8_t *buf;
    _Atomic uint8_t *st;
    int k = claim_fast(r, g, len, &pos, &buf, &st);
    if (MPSCQ_UNLIKELY(k == 1))
        return mpscq_ring_write_slow(r, g, data, len);
    if (MPSCQ_UNLIKELY(k == 2))
        return mpscq_ring_write_after(r, g, data, len, pos);
    memcpy(buf, data, len);
    return publish(r, g, st);
}
