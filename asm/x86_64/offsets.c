/*
 * offsets.c - structure offsets and constants for the NASM routines.
 *
 * Compiled with `$(CC) -S` only (never linked); the build turns each
 * "->NAME value" marker of the assembly output into `%define NAME value`
 * in offsets.inc, so the assembly can never disagree with the C layout.
 */
#include "config.h"

#include <stddef.h>

#include "internal.h"
#include "consumer.h"
#include "hazard.h"
#include "ring.h"

#define DEFINE(sym, val) __asm__ volatile("\n.ascii \"->" #sym " %c0\"" : : "i"((long)(val)))

void mpscq_asm_offsets(void);

/* The asm tests the gate with one 8-byte compare. */
_Static_assert(sizeof(((struct mpscq *)0)->gate) == 8, "gate is one qword");

void mpscq_asm_offsets(void)
{
    DEFINE(Q_TAIL, offsetof(struct mpscq, tail));
    DEFINE(Q_HINT, offsetof(struct mpscq, hint));
    DEFINE(Q_PARKED, offsetof(struct mpscq, parked));
    DEFINE(Q_NEED_FENCE, offsetof(struct mpscq, need_fence));
    DEFINE(Q_SHIFT, offsetof(struct mpscq, shift));
    DEFINE(Q_MASK, offsetof(struct mpscq, mask));
    DEFINE(Q_NSLOTS, offsetof(struct mpscq, nslots));
    DEFINE(Q_GATE, offsetof(struct mpscq, gate));
    DEFINE(Q_SCAN_SEG, offsetof(struct mpscq, scan_seg));
    DEFINE(Q_SCAN, offsetof(struct mpscq, scan));
    DEFINE(Q_HEAD, offsetof(struct mpscq, head));
    DEFINE(Q_LAST, offsetof(struct mpscq, last));
    DEFINE(Q_LAST_CONT, offsetof(struct mpscq, last_cont));
    DEFINE(Q_DEQUEUED, offsetof(struct mpscq, dequeued));
    DEFINE(Q_CAPACITY, offsetof(struct mpscq, capacity));
    DEFINE(Q_RELEASED, offsetof(struct mpscq, released));
    DEFINE(Q_SPACE_ARMED, offsetof(struct mpscq, space_armed));
    DEFINE(Q_RELEASE_DEBT, offsetof(struct mpscq, release_debt));
    DEFINE(Q_RELEASE_BATCH, offsetof(struct mpscq, release_batch));
    DEFINE(Q_CONSUMER, offsetof(struct mpscq, consumer));
    DEFINE(TLS_MARK, offsetof(struct mpscq_tls_ent, mark));
    DEFINE(MARK_IN, offsetof(struct mpscq_consumer_mark, in));
    DEFINE(REC_HP, offsetof(struct mpscq_hp_rec, hp));
    DEFINE(REC_SPARE, offsetof(struct mpscq_hp_rec, spare));
    DEFINE(REC_SEEN, offsetof(struct mpscq_hp_rec, seen));
    DEFINE(TLS_Q, offsetof(struct mpscq_tls_ent, q));
    DEFINE(TLS_QID, offsetof(struct mpscq_tls_ent, qid));
    DEFINE(TLS_REC, offsetof(struct mpscq_tls_ent, rec));
    DEFINE(Q_QID, offsetof(struct mpscq, qid));
    DEFINE(Q_REJECTED, offsetof(struct mpscq, rejected));
    DEFINE(SEG_ID, offsetof(struct mpscq_segment, id));
    DEFINE(SEG_BASE, offsetof(struct mpscq_segment, base));
    DEFINE(SEG_VALS, sizeof(struct mpscq_segment)); /* the slot area (internal.h) */
    DEFINE(LINE_STATES, MPSCQ_LINE_STATES);
    DEFINE(DIV7_MUL, MPSCQ_DIV7_MUL);
    DEFINE(HP_ALL, (long)(uintptr_t)MPSCQ_HP_ALL);
    DEFINE(SLOT_READY, MPSCQ_SLOT_READY);
    DEFINE(SLOT_CONT, MPSCQ_SLOT_CONT);
    DEFINE(ST_OK, MPSCQ_OK);
    DEFINE(ST_CLOSED, MPSCQ_CLOSED);
    DEFINE(ST_INVAL, MPSCQ_INVAL);
    DEFINE(TAIL_CLOSED_BIT, 63);
    /* The enqueue's wake check reads parked and need_fence as one qword. */
    _Static_assert(offsetof(struct mpscq, need_fence) == offsetof(struct mpscq, parked) + 4 &&
                       offsetof(struct mpscq, parked) % 8 == 0,
                   "parked and need_fence must share one aligned qword");
    /* mpscq_ring (ring.asm). */
    DEFINE(R_SH, offsetof(struct mpscq_ring, sh));
    DEFINE(R_MAP, offsetof(struct mpscq_ring, map));
    DEFINE(R_SLOTS, offsetof(struct mpscq_ring, slots));
    DEFINE(R_CHUNKS, offsetof(struct mpscq_ring, chunks));
    DEFINE(R_S, offsetof(struct mpscq_ring, S));
    DEFINE(R_K, offsetof(struct mpscq_ring, K));
    DEFINE(R_STRIDE, offsetof(struct mpscq_ring, stride));
    DEFINE(R_STATE_BYTES, offsetof(struct mpscq_ring, state_bytes));
    DEFINE(R_SINV, offsetof(struct mpscq_ring, s_inv));
    DEFINE(R_MMASK, offsetof(struct mpscq_ring, mmask));
    DEFINE(SH_TAIL, offsetof(struct ring_shared, tail));
    DEFINE(SH_SLEEPING, offsetof(struct ring_shared, sleeping));
    DEFINE(RSLOT_CLAIM, offsetof(struct ring_slot, claim));
    DEFINE(RREG_SLOT, offsetof(struct ring_reg, slot));
    DEFINE(RREG_OPEN_BUF, offsetof(struct ring_reg, open_buf));
    DEFINE(RREG_OPEN_STATE, offsetof(struct ring_reg, open_state));
    DEFINE(RING_HDR_BYTES, RING_HDR);
    DEFINE(RING_REC_CHECK, RING_REC_CHECK);
    DEFINE(RING_ST_HEAD, RING_ST_HEAD);
    DEFINE(RING_MAP_INSTALLED, RING_MAP_INSTALLED);
    _Static_assert(sizeof(struct ring_slot) == 64, "ring.asm indexes slots by << 6");
    _Static_assert(sizeof(((struct ring_reg *)0)->slot) == 4, "ring.asm loads slot as a dword");
    _Static_assert(RING_UNIT == 16 && RING_HDR == 16, "ring.asm: units and headers of 16 bytes");
    _Static_assert(RING_CLAIM_PENDING == (UINT64_C(1) << 63) && RING_CLAIM_IDLE == UINT64_MAX &&
                       RING_CLOSED == (UINT64_C(1) << 63),
                   "ring.asm: PENDING and CLOSED are bit 63, IDLE all ones");
    _Static_assert(RING_MAPW(1, 1, 0) == ((UINT64_C(1) << 20) | (UINT64_C(1) << 16)) &&
                       RING_CMASK == (UINT64_C(1) << 44) - 1,
                   "ring.asm: a map word is chunk:44 << 20 | state:4 << 16 | phys:16");
    _Static_assert(sizeof(struct ring_rec) == 16 && offsetof(struct ring_rec, len) == 8 &&
                       offsetof(struct ring_rec, check) == 12,
                   "ring.asm writes the header as two qwords");
    /* The routines assume these sizes. */
    DEFINE(SIZEOF_INT_OK, sizeof(int) == 4 && sizeof(unsigned) == 4);
    DEFINE(SIZEOF_SIZE_OK, sizeof(size_t) == 8 && sizeof(void *) == 8);
}
