/*
 * producer.c - producer handles: an enqueue with no thread-local lookup.
 *
 * A handle owns a hazard record of its own (hazard.c), taken from the
 * queue's free handle records or made at mpscq_producer_create, so that
 * mpscq_producer_enqueue goes straight to the fast path: no TLS access,
 * no registration.  One thread at a time uses a handle; handing it to
 * another thread needs the ordinary synchronization (a mutex, thread
 * creation or join, a release store).  doc/design.md s. 4, "Handles".
 */
#include "config.h"

#include "arch.h"
#include "capacity.h"
#include "hazard.h"
#include "segment.h"

struct mpscq_producer {
    struct mpscq *q;
    struct mpscq_hp_rec *rec;
};

int mpscq_producer_create(mpscq_t *q, mpscq_producer_t **p)
{
    if (!q || !p)
        return MPSCQ_INVAL;
    struct mpscq_producer *h = mpscq_alloc(q, sizeof *h);
    if (!h) {
        MPSCQ_STAT_ADD(q, st_nomem, 1);
        return MPSCQ_NOMEM;
    }
    struct mpscq_hp_rec *r = mpscq_hp_acquire_handle(q);
    if (!r) {
        mpscq_free(q, h, sizeof *h);
        MPSCQ_STAT_ADD(q, st_nomem, 1);
        return MPSCQ_NOMEM;
    }
    /* Preallocated queue: one more segment for the pool for good, which
     * covers this handle's spare, so its enqueues never allocate. */
    if (q->preallocated && mpscq_seg_prealloc(q, 1) != MPSCQ_OK) {
        mpscq_hp_release_handle(q, r);
        mpscq_free(q, h, sizeof *h);
        MPSCQ_STAT_ADD(q, st_nomem, 1);
        return MPSCQ_NOMEM;
    }
    h->q = q;
    h->rec = r;
    *p = h;
    return MPSCQ_OK;
}

int mpscq_producer_enqueue(mpscq_producer_t *p, void *msg)
{
    if (MPSCQ_UNLIKELY(!p))
        return MPSCQ_INVAL;
    struct mpscq *q = p->q;
    struct mpscq_hp_rec *r = p->rec;
    if (MPSCQ_UNLIKELY(!r->spare))
        return mpscq_enqueue_prepared(q, r, msg);
    uint64_t admit = mpscq_admit(q);
    if (MPSCQ_UNLIKELY(r->seen + 1 > admit))
        return mpscq_enqueue_prepared(q, r, msg); /* FULL or CLOSED, no ticket */
    /* A tail call: the fast path finishes the enqueue. */
    return mpscq_fast_enqueue(q, r, msg, admit);
}

int mpscq_producer_enqueue_batch(mpscq_producer_t *p, void *const *msgs, size_t n)
{
    if (!p || (!msgs && n))
        return MPSCQ_INVAL;
    if (n == 0)
        return MPSCQ_OK;
    int rc = mpscq_enqueue_batch_check(p->q, n);
    if (rc != MPSCQ_OK)
        return rc;
    return mpscq_enqueue_batch_rec(p->q, p->rec, msgs, n);
}

void mpscq_producer_destroy(mpscq_producer_t *p)
{
    if (!p)
        return;
    struct mpscq *q = p->q;
    mpscq_hp_release_handle(q, p->rec);
    mpscq_free(q, p, sizeof *p);
}
