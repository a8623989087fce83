/*
 * arch.h - the primitive interface that has an assembly twin.
 *
 * Every routine below exists as a portable C11 function named *_base
 * (arch_base.c, fastpath.c).  Configure selects at build time which one
 * the generic names bind to; the hot path makes a direct call, never an
 * indirect one.  Until the x86-64 NASM routines land, every build binds
 * the C twins.
 */
#ifndef MPSCQ_ARCH_H
#define MPSCQ_ARCH_H

#include <stdint.h>
#include "internal.h"

struct mpscq_hp_rec;

/* 16-byte compare-and-swap on a 16-byte aligned pair of words.
 * Compares {lo, hi} at p with expected[0..1]; if equal stores desired[0..1]
 * and returns 1, else copies the current value into expected and returns 0.
 * Sequentially consistent (a LOCK-prefixed instruction on x86-64). */
MPSCQ_HIDDEN int mpscq_arch_cas16_base(void *p, uint64_t expected[2],
                                       const uint64_t desired[2]);

/* One spin-wait hint (PAUSE on x86, YIELD on AArch64, nothing elsewhere). */
MPSCQ_HIDDEN void mpscq_arch_pause_base(void);

/* Spin about `ns` nanoseconds with pause hints, calibrated once per process. */
MPSCQ_HIDDEN void mpscq_arch_spin_ns_base(unsigned ns);

/* The enqueue fast path.  Takes one ticket for msg.  Returns MPSCQ_OK
 * (written, hazard released), MPSCQ_CLOSED (nothing kept, hazard
 * released) or MPSCQ_SLOW: the ticket is in *ticket, the record's
 * hazard pointer protects *start (a segment at or before the ticket's),
 * and the caller must finish.  Unbounded queues only. */
MPSCQ_HIDDEN int mpscq_fast_enqueue_base(struct mpscq *q, struct mpscq_hp_rec *r,
                                         void *msg, uint64_t *ticket,
                                         struct mpscq_segment **start);

/* The dequeue fast path: the next slot in order is ready and nothing was
 * skipped.  Returns MPSCQ_OK with *msg set, else MPSCQ_SLOW. */
MPSCQ_HIDDEN int mpscq_fast_dequeue_base(struct mpscq *q, void **msg);

#define mpscq_arch_cas16      mpscq_arch_cas16_base
#define mpscq_arch_pause      mpscq_arch_pause_base
#define mpscq_arch_spin_ns    mpscq_arch_spin_ns_base
#define mpscq_fast_enqueue    mpscq_fast_enqueue_base
#define mpscq_fast_dequeue    mpscq_fast_dequeue_base
#define MPSCQ_IMPLEMENTATION  "c11"

/* Exponential backoff for CAS retry loops: about 1 ns doubling to 1 us.
 * `fails` counts consecutive failures; at 1000 the caller logs once. */
struct mpscq_backoff {
    unsigned ns;
    unsigned fails;
};

static inline void mpscq_backoff_init(struct mpscq_backoff *b)
{
    b->ns = 1;
    b->fails = 0;
}

static inline void mpscq_backoff_wait(struct mpscq_backoff *b)
{
    mpscq_arch_spin_ns(b->ns);
    if (b->ns < 1024)
        b->ns <<= 1;
    b->fails++;
}

#endif /* MPSCQ_ARCH_H */
