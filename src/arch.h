/*
 * arch.h - the routines that have an assembly twin.
 *
 * Every routine below exists as a portable C11 function named *_base
 * (arch_base.c, fastpath.c), always compiled, and on x86-64 as a NASM
 * routine named *_x86_64 (asm/x86_64/).  Configure selects at build time
 * which one the generic names bind to (--enable-asm, the default where
 * nasm works, or --disable-asm); the hot path makes a direct call, never
 * an indirect one.
 */
#ifndef MPSCQ_ARCH_H
#define MPSCQ_ARCH_H

#include <stdint.h>
#include "internal.h"

struct mpscq_hp_rec;
struct mpscq_ring;
struct ring_reg;

/* ---- the routines with two implementations ------------------------ */

/* 16-byte compare-and-swap on a 16-byte aligned pair of words.
 * Compares {lo, hi} at p with expected[0..1]; if equal stores desired[0..1]
 * and returns 1, else copies the current value into expected and returns 0.
 * Sequentially consistent (a LOCK-prefixed instruction on x86-64). */
typedef int mpscq_cas16_fn(void *p, uint64_t expected[2], const uint64_t desired[2]);

/* n spin-wait hints in a row (PAUSE on x86, YIELD on AArch64, a compiler
 * barrier elsewhere); n may be 0. */
typedef void mpscq_pause_loop_fn(unsigned long n);

/* The enqueue fast path: the whole of mpscq_enqueue once r is known and
 * holds a spare.  Takes one ticket; a ticket at or above `admit`
 * (capacity.h; MPSCQ_ADMIT_ALL when unbounded, so that a closed queue's
 * ticket fails the same compare) is closed or refused.  When the hinted
 * segment holds an admitted ticket it writes the slot and returns
 * MPSCQ_OK.  Otherwise it tail-calls the C continuation:
 * mpscq_enqueue_finish (another segment) or mpscq_enqueue_refused (closed
 * or refused; the hazard still says ALL). */
typedef int mpscq_enqueue_fn(struct mpscq *q, struct mpscq_hp_rec *r, void *msg,
                             uint64_t admit);

/* The batch enqueue's first half: publish the hazard as the fast path
 * does, take n tickets with one fetch-and-add and return the first (bit 63
 * set when closed).  When t + n <= admit, the hint is read and *start is
 * the segment the hazard names; otherwise (closed or refused) the hazard
 * still says ALL and *start is not written. */
typedef uint64_t mpscq_reserve_fn(struct mpscq *q, struct mpscq_hp_rec *r,
                                  uint64_t n, uint64_t admit, struct mpscq_segment **start);

/* The dequeue fast path: the whole of mpscq_dequeue when the next slot in
 * order is ready and nothing was skipped (returns MPSCQ_OK; at a segment
 * boundary via mpscq_dequeue_crossed).  Otherwise it tail-calls
 * mpscq_dequeue_slow having changed nothing. */
typedef int mpscq_dequeue_fn(struct mpscq *q, void **msg);

/* The public entries, mpscq_enqueue and mpscq_dequeue, whole: argument
 * checks, the calling thread's cached record (enqueue), admission, and
 * the fast path above inlined, so that the common case is one routine
 * with no call (a register allocation across all of it, which the C
 * build's separate wrapper and fast path do not get).  Anything else
 * continues in mpscq_enqueue_slow / the fast paths' continuations. */
typedef int mpscq_enqueue_entry_fn(struct mpscq *q, void *msg);
typedef int mpscq_dequeue_entry_fn(struct mpscq *q, void **msg);
/* The enqueue entry's continuation: the record looked up or registered,
 * a spare refilled, FULL or CLOSED without a ticket (enqueue.c). */
MPSCQ_HIDDEN int mpscq_enqueue_slow(struct mpscq *q, void *msg);

/* The C continuations the fast paths jump to (enqueue.c, dequeue.c). */
MPSCQ_HIDDEN int mpscq_enqueue_finish(struct mpscq *q, struct mpscq_hp_rec *r, void *msg,
                                      uint64_t ticket, struct mpscq_segment *start);
MPSCQ_HIDDEN int mpscq_enqueue_refused(struct mpscq *q, struct mpscq_hp_rec *r,
                                       uint64_t ticket, uint64_t n);
MPSCQ_HIDDEN int mpscq_dequeue_slow(struct mpscq *q, void **msg);
MPSCQ_HIDDEN int mpscq_dequeue_crossed(struct mpscq *q);

/* mpscq_ring's producer fast paths (ring.h has the layout and the C
 * continuations, ring-design.md s. 3 the argument).  Each takes the
 * calling thread's registration g, which has no claim open, does the
 * common case itself and tail-calls a continuation (ring_write.c) for
 * anything else; each returns an MPSCQ_ status.
 *   claim(r, g, len)        mpscq_ring_reserve: the pre-check, the
 *                           fetch-and-add, the record's header; g->open_*
 *                           name the claim.
 *   publish(r, g)           mpscq_ring_commit of g's open claim.
 *   write(r, g, data, len)  mpscq_ring_write: claim, copy, publish in one
 *                           (g->open_* untouched: the claim is never open
 *                           to the caller). */
typedef int mpscq_ring_claim_fn(struct mpscq_ring *r, struct ring_reg *g, size_t len);
typedef int mpscq_ring_publish_fn(struct mpscq_ring *r, struct ring_reg *g);
typedef int mpscq_ring_write_fn(struct mpscq_ring *r, struct ring_reg *g, const void *data,
                                size_t len);

/* C11 twins: always built (arch_base.c, fastpath.c, ring_fastpath.c). */
MPSCQ_HIDDEN mpscq_cas16_fn mpscq_arch_cas16_base;
MPSCQ_HIDDEN mpscq_pause_loop_fn mpscq_arch_pause_loop_base;
MPSCQ_HIDDEN mpscq_enqueue_fn mpscq_fast_enqueue_base;
MPSCQ_HIDDEN mpscq_reserve_fn mpscq_fast_reserve_base;
MPSCQ_HIDDEN mpscq_dequeue_fn mpscq_fast_dequeue_base;
MPSCQ_HIDDEN mpscq_enqueue_entry_fn mpscq_enqueue_entry_base;
MPSCQ_HIDDEN mpscq_dequeue_entry_fn mpscq_dequeue_entry_base;
MPSCQ_HIDDEN mpscq_ring_claim_fn mpscq_ring_claim_base;
MPSCQ_HIDDEN mpscq_ring_publish_fn mpscq_ring_publish_base;
MPSCQ_HIDDEN mpscq_ring_write_fn mpscq_ring_write_base;

/* MPSCQ_FORCE_C: the benchmark's C-only twin library in an asm build.
 * MPSCQ_VALGRIND_ANNOTATIONS: Helgrind builds use the C twins, since
 * NASM code cannot issue Valgrind client requests. */
#ifdef MPSCQ_HAVE_ASM
/* x86-64 NASM (asm/x86_64/). */
MPSCQ_HIDDEN mpscq_cas16_fn mpscq_arch_cas16_x86_64;
MPSCQ_HIDDEN mpscq_pause_loop_fn mpscq_arch_pause_loop_x86_64;
MPSCQ_HIDDEN mpscq_enqueue_fn mpscq_fast_enqueue_x86_64;
MPSCQ_HIDDEN mpscq_reserve_fn mpscq_fast_reserve_x86_64;
MPSCQ_HIDDEN mpscq_dequeue_fn mpscq_fast_dequeue_x86_64;
MPSCQ_HIDDEN mpscq_enqueue_entry_fn mpscq_enqueue_entry_x86_64;
MPSCQ_HIDDEN mpscq_dequeue_entry_fn mpscq_dequeue_entry_x86_64;
MPSCQ_HIDDEN mpscq_ring_claim_fn mpscq_ring_claim_x86_64;
MPSCQ_HIDDEN mpscq_ring_publish_fn mpscq_ring_publish_x86_64;
MPSCQ_HIDDEN mpscq_ring_write_fn mpscq_ring_write_x86_64;
#define MPSCQ_ASM_NAME "x86_64-nasm"
#endif

#ifdef MPSCQ_TEST_DISPATCH
/* Test library only: every routine goes through this table so that one
 * test binary can run the asm and the C twin side by side
 * (tests/check_equiv.c).  It starts out pointing at the C twins. */
struct mpscq_impl {
    const char *name;
    mpscq_cas16_fn *cas16;
    mpscq_pause_loop_fn *pause_loop;
    mpscq_enqueue_fn *enqueue;
    mpscq_reserve_fn *reserve;
    mpscq_dequeue_fn *dequeue;
    mpscq_enqueue_entry_fn *enqueue_entry;
    mpscq_dequeue_entry_fn *dequeue_entry;
    mpscq_ring_claim_fn *ring_claim;
    mpscq_ring_publish_fn *ring_publish;
    mpscq_ring_write_fn *ring_write;
};
extern const struct mpscq_impl mpscq_impl_base;
#ifdef MPSCQ_HAVE_ASM
extern const struct mpscq_impl mpscq_impl_asm;
#endif
extern const struct mpscq_impl *mpscq_impl;
#define mpscq_arch_cas16      (mpscq_impl->cas16)
#define mpscq_arch_pause_loop (mpscq_impl->pause_loop)
#define mpscq_fast_enqueue    (mpscq_impl->enqueue)
#define mpscq_fast_reserve    (mpscq_impl->reserve)
#define mpscq_fast_dequeue    (mpscq_impl->dequeue)
#define mpscq_enqueue_entry   (mpscq_impl->enqueue_entry)
#define mpscq_dequeue_entry   (mpscq_impl->dequeue_entry)
#define mpscq_ring_claim      (mpscq_impl->ring_claim)
#define mpscq_ring_publish    (mpscq_impl->ring_publish)
#define mpscq_ring_write_fast (mpscq_impl->ring_write)
#define MPSCQ_ENTRIES_DISPATCHED 1
#define MPSCQ_IMPLEMENTATION  (mpscq_impl->name)
#elif defined(MPSCQ_HAVE_ASM) && !defined(MPSCQ_FORCE_C) && !defined(MPSCQ_VALGRIND_ANNOTATIONS)
/* Selection at build time: the linker binds these names directly. */
#define mpscq_arch_cas16      mpscq_arch_cas16_x86_64
#define mpscq_arch_pause_loop mpscq_arch_pause_loop_x86_64
#define mpscq_fast_enqueue    mpscq_fast_enqueue_x86_64
#define mpscq_fast_reserve    mpscq_fast_reserve_x86_64
#define mpscq_fast_dequeue    mpscq_fast_dequeue_x86_64
#define mpscq_enqueue_entry   mpscq_enqueue_entry_x86_64
#define mpscq_dequeue_entry   mpscq_dequeue_entry_x86_64
#define mpscq_ring_claim      mpscq_ring_claim_x86_64
#define mpscq_ring_publish    mpscq_ring_publish_x86_64
#define mpscq_ring_write_fast mpscq_ring_write_x86_64
#define MPSCQ_ENTRIES_DISPATCHED 1
#define MPSCQ_IMPLEMENTATION  MPSCQ_ASM_NAME
#else
#define mpscq_arch_cas16      mpscq_arch_cas16_base
#define mpscq_arch_pause_loop mpscq_arch_pause_loop_base
#define mpscq_fast_enqueue    mpscq_fast_enqueue_base
#define mpscq_fast_reserve    mpscq_fast_reserve_base
#define mpscq_fast_dequeue    mpscq_fast_dequeue_base
#define mpscq_ring_claim      mpscq_ring_claim_base
#define mpscq_ring_publish    mpscq_ring_publish_base
#define mpscq_ring_write_fast mpscq_ring_write_base
#define MPSCQ_IMPLEMENTATION  "c11"
#endif

/* Measure the pause hint's length, once per process (mpscq_create). */
MPSCQ_HIDDEN void mpscq_spin_init(void);
/* Spin about `ns` nanoseconds with pause hints (as calibrated). */
MPSCQ_HIDDEN void mpscq_spin_ns(unsigned ns);

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
    mpscq_spin_ns(b->ns);
    if (b->ns < 1024)
        b->ns <<= 1;
    b->fails++;
}

#endif /* MPSCQ_ARCH_H */
