/*
 * annotate.h - happens-before annotations for Helgrind/DRD.
 * With --enable-valgrind-annotations these expand to valgrind's client
 * requests (a few no-op instructions outside Valgrind); otherwise to
 * nothing.  Placed at every publishing store and consuming load.
 */
#ifndef MPSCQ_ANNOTATE_H
#define MPSCQ_ANNOTATE_H

/*
 * MPSCQ_HB_BEFORE(obj) goes just before a publishing store (release,
 * CAS, XCHG), MPSCQ_HB_AFTER(obj) just after the matching consuming load;
 * Helgrind then orders everything the publisher did before with everything
 * the consumer does after.  MPSCQ_HB_FORGET(obj) where obj's memory is
 * recycled.
 *
 * MPSCQ_HG_ATOMIC(addr, size) tells Helgrind that an object is a C11
 * atomic: a synchronization variable, accessed only with atomic
 * operations.  Helgrind cannot tell an atomic load or store (a plain MOV
 * on x86) from a plain one, so it would report every atomic as racing
 * with itself.  Checking is disabled on exactly these objects, never on
 * data: every value handed from one thread to another through them
 * (messages, segment contents, records) still carries a happens-before
 * edge above and is checked.
 */
#ifdef MPSCQ_VALGRIND_ANNOTATIONS
#include <valgrind/helgrind.h>
#define MPSCQ_HB_BEFORE(a) ANNOTATE_HAPPENS_BEFORE(a)
#define MPSCQ_HB_AFTER(a)  ANNOTATE_HAPPENS_AFTER(a)
#define MPSCQ_HB_FORGET(a) ANNOTATE_HAPPENS_BEFORE_FORGET_ALL(a)
#define MPSCQ_HG_ATOMIC(a, n) VALGRIND_HG_DISABLE_CHECKING((a), (n))
#else
#define MPSCQ_HB_BEFORE(a) ((void)0)
#define MPSCQ_HB_AFTER(a)  ((void)0)
#define MPSCQ_HB_FORGET(a) ((void)0)
#define MPSCQ_HG_ATOMIC(a, n) ((void)0)
#endif
#define MPSCQ_HG_ATOMIC_VAR(v) MPSCQ_HG_ATOMIC(&(v), sizeof(v))

#endif /* MPSCQ_ANNOTATE_H */
