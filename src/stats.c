/*
 * stats.c - what any thread may ask of a queue under traffic: its size,
 * its capacity and its counters.
 */
#include "config.h"

#include <string.h>

#include "internal.h"
#include "hazard.h"

/* Tickets issued to accepted messages (before any close): issued less
 * refused.  Relaxed loads here and in mpscq_size/mpscq_stats: they report
 * counts, and order nothing (a refused ticket counts as issued for the
 * instant before its producer counts it refused). */
static uint64_t accepted(const struct mpscq *q)
{
    struct mpscq *m = (struct mpscq *)q;
    uint64_t rej = atomic_load_explicit(&m->rejected, memory_order_relaxed);
    uint64_t t = atomic_load_explicit(&m->tail, memory_order_relaxed);
    if (t & MPSCQ_TAIL_CLOSED) {
        uint64_t ct = atomic_load_explicit(&m->close_ticket, memory_order_relaxed);
        t = ct != MPSCQ_TICKET_UNSET ? ct : (t & ~MPSCQ_TAIL_CLOSED);
    }
    return t > rej ? t - rej : 0;
}

/* Messages dequeued: the consumers' shared count, and in the unbounded
 * many-consumer mode each thread's own (consumers.c counts there). */
static uint64_t mpscq_dequeued_total(const struct mpscq *q)
{
    /* Relaxed: a count (above). */
    uint64_t d = atomic_load_explicit(&((struct mpscq *)q)->dequeued, memory_order_relaxed);
    if (q->many && !q->capacity)
        d += mpscq_hp_sum_dequeued(q);
    return d;
}

size_t mpscq_size(const mpscq_t *q)
{
    if (!q)
        return 0;
    uint64_t d = mpscq_dequeued_total(q);
    uint64_t a = accepted(q);
    return a > d ? (size_t)(a - d) : 0;
}

size_t mpscq_capacity(const mpscq_t *q)
{
    return q ? q->capacity : 0;
}

void mpscq_stats_sized(const mpscq_t *cq, struct mpscq_stats *user, size_t size)
{
    if (!user)
        return;
    /* Filled here, then copied: a caller compiled against an older header
     * gets the counters it knows, a newer one zeros for the rest. */
    struct mpscq_stats st, *out = &st;
    memset(user, 0, size);
    memset(out, 0, sizeof *out);
    if (!cq)
        return;
    struct mpscq *q = (struct mpscq *)cq;
#define LD(f) atomic_load_explicit(&q->f, memory_order_relaxed)
    out->enqueued = accepted(q);
    out->dequeued = mpscq_dequeued_total(q);
    out->full_rejections = LD(st_full);
    out->closed_rejections = LD(st_closed);
    out->nomem_failures = LD(st_nomem);
    out->segments_allocated = LD(st_alloc);
    out->segments_recycled = LD(st_recycled);
    out->segments_freed = LD(st_freed);
    out->cas_failures = LD(st_cas_fail);
    out->consumer_parks = LD(st_parks);
    out->consumer_naps = LD(st_naps);
    out->producer_waits = LD(st_waits);
    out->consumer_busy = LD(st_busy);
#undef LD
    memcpy(user, out, size < sizeof *out ? size : sizeof *out);
}

