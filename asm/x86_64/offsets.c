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
#include "hazard.h"

#define DEFINE(sym, val) __asm__ volatile("\n.ascii \"->" #sym " %c0\"" : : "i"((long)(val)))

void mpscq_asm_offsets(void);

void mpscq_asm_offsets(void)
{
    DEFINE(Q_TAIL, offsetof(struct mpscq, tail));
    DEFINE(Q_HINT, offsetof(struct mpscq, hint));
    DEFINE(Q_PARKED, offsetof(struct mpscq, parked));
    DEFINE(Q_NEED_FENCE, offsetof(struct mpscq, need_fence));
    DEFINE(Q_SHIFT, offsetof(struct mpscq, shift));
    DEFINE(Q_MASK, offsetof(struct mpscq, mask));
    DEFINE(Q_NSLOTS, offsetof(struct mpscq, nslots));
    DEFINE(Q_NPEND, offsetof(struct mpscq, npend));
    DEFINE(Q_SCAN_SEG, offsetof(struct mpscq, scan_seg));
    DEFINE(Q_SCAN, offsetof(struct mpscq, scan));
    DEFINE(Q_HEAD, offsetof(struct mpscq, head));
    DEFINE(Q_LAST, offsetof(struct mpscq, last));
    DEFINE(Q_LAST_CONT, offsetof(struct mpscq, last_cont));
    DEFINE(Q_DEQUEUED, offsetof(struct mpscq, dequeued));
    DEFINE(Q_CAPACITY, offsetof(struct mpscq, capacity));
    DEFINE(Q_RELEASED, offsetof(struct mpscq, released));
    DEFINE(Q_RELEASE_DEBT, offsetof(struct mpscq, release_debt));
    DEFINE(Q_RELEASE_BATCH, offsetof(struct mpscq, release_batch));
    DEFINE(REC_HP, offsetof(struct mpscq_hp_rec, hp));
    DEFINE(SEG_ID, offsetof(struct mpscq_segment, id));
    DEFINE(SEG_VALS, sizeof(struct mpscq_segment));
    DEFINE(HP_ALL, (long)(uintptr_t)MPSCQ_HP_ALL);
    DEFINE(SLOT_READY, MPSCQ_SLOT_READY);
    DEFINE(SLOT_CONT, MPSCQ_SLOT_CONT);
    DEFINE(ST_OK, MPSCQ_OK);
    DEFINE(ST_CLOSED, MPSCQ_CLOSED);
    DEFINE(TAIL_CLOSED_BIT, 63);
    /* The routines assume these sizes. */
    DEFINE(SIZEOF_INT_OK, sizeof(int) == 4 && sizeof(unsigned) == 4);
    DEFINE(SIZEOF_SIZE_OK, sizeof(size_t) == 8 && sizeof(void *) == 8);
}
