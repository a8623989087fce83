/*
 * annotate.h - happens-before annotations for Helgrind/DRD.
 * With --enable-valgrind-annotations these expand to valgrind's client
 * requests (a few no-op instructions outside Valgrind); otherwise to
 * nothing.  Placed at every publishing store and consuming load.
 */
#ifndef MPSCQ_ANNOTATE_H
#define MPSCQ_ANNOTATE_H

#ifdef MPSCQ_VALGRIND_ANNOTATIONS
#include <valgrind/helgrind.h>
#define MPSCQ_HB_BEFORE(a) ANNOTATE_HAPPENS_BEFORE(a)
#define MPSCQ_HB_AFTER(a)  ANNOTATE_HAPPENS_AFTER(a)
#define MPSCQ_HB_FORGET(a) ANNOTATE_HAPPENS_BEFORE_FORGET_ALL(a)
#else
#define MPSCQ_HB_BEFORE(a) ((void)0)
#define MPSCQ_HB_AFTER(a)  ((void)0)
#define MPSCQ_HB_FORGET(a) ((void)0)
#endif

#endif /* MPSCQ_ANNOTATE_H */
