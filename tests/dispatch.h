/* dispatch.h - the test library's dispatch table (src/arch.h, built with
 * -DMPSCQ_TEST_DISPATCH): which twin of the hot routines a suite runs.
 * mpscq_impl starts at the C twins. */
#ifndef MPSCQ_TEST_DISPATCH_H
#define MPSCQ_TEST_DISPATCH_H

#include "arch.h"

#ifdef MPSCQ_HAVE_ASM
/* Check fixtures: a test case through the NASM routines, then back. */
static inline void tu_use_asm(void)
{
    mpscq_impl = &mpscq_impl_asm;
}
static inline void tu_use_c(void)
{
    mpscq_impl = &mpscq_impl_base;
}
/* The C twins with the NASM mpscq_dequeue entries: for suites whose hook
 * tests stop producers at hooks only the C enqueue has. */
static inline void tu_use_asm_dequeue(const char *name)
{
    static struct mpscq_impl asm_dequeue;
    asm_dequeue = mpscq_impl_base;
    asm_dequeue.name = name;
    asm_dequeue.dequeue = mpscq_impl_asm.dequeue;
    asm_dequeue.dequeue_entry = mpscq_impl_asm.dequeue_entry;
    mpscq_impl = &asm_dequeue;
}
#endif

#endif
