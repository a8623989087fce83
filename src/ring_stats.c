/*
 * ring_stats.c - mpscq_ring's counters, read by any thread of any process
 * attached to the ring (the region holds them: the consumer's in its
 * state, FULL answers in the shared words, producers in the slots).
 */
#include "config.h"

#include <string.h>

#include "ring.h"

void mpscq_ring_stats_sized(const mpscq_ring_t *r, struct mpscq_ring_stats *user, size_t size)
{
    if (!user)
        return;
    /* Filled here, then copied: a caller compiled against an older header
     * gets the counters it knows, a newer one zeros for the rest. */
    struct mpscq_ring_stats st;
    memset(user, 0, size);
    memset(&st, 0, sizeof st);
    if (!r)
        return;
    const struct ring_consumer *cs = r->cs;
    /* Relaxed, all: statistics.  The consumer's counters are plain fields
     * it stores atomically (RING_COUNT, ring.h); a corrupt region gives
     * garbage counts, nothing worse. */
    st.delivered = __atomic_load_n(&cs->delivered, __ATOMIC_RELAXED);
    st.dropped_claims = __atomic_load_n(&cs->dropped_claims, __ATOMIC_RELAXED);
    st.corrupt = __atomic_load_n(&cs->corrupt, __ATOMIC_RELAXED);
    st.refused_chunks = __atomic_load_n(&cs->refused_chunks, __ATOMIC_RELAXED);
    st.full = atomic_load_explicit(&r->sh->full_count, memory_order_relaxed);
    st.busy = atomic_load_explicit(&r->sh->busy_count, memory_order_relaxed);
    st.closed = (atomic_load_explicit(&r->sh->tail, memory_order_relaxed) & RING_CLOSED) != 0;
    for (uint64_t i = 0; i < r->P; i++) {
        /* A slot being taken or freed (TAKING) counts: its thread is there. */
        if (atomic_load_explicit(&r->slots[i].owner, memory_order_relaxed))
            st.producers++;
    }
    memcpy(user, &st, size < sizeof st ? size : sizeof st);
}
