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
    DEFINE(Q_STATE_OFF, offsetof(struct mpscq, state_off));
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
    DEFINE(SEG_VALS, sizeof(struct mpscq_segment));
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
    /* The routines assume these sizes. */
    DEFINE(SIZEOF_INT_OK, sizeof(int) == 4 && sizeof(unsigned) == 4);
    DEFINE(SIZEOF_SIZE_OK, sizeof(size_t) == 8 && sizeof(void *) == 8);
}
