/*
 * alloc.c - where the library's memory comes from: the default allocator
 * and the calls through the configured alloc_fn/free_fn.  (Segment memory
 * has its own path with the default allocator: segment.c.)
 */
#include "config.h"

#include <stdlib.h>

#include "consumer.h"
#include "internal.h"

void *mpscq_default_alloc(size_t size, void *arg)
{
    (void)arg;
    void *p = NULL;
    if (posix_memalign(&p, MPSCQ_CACHELINE, size) != 0)
        return NULL;
    return p;
}

void mpscq_default_free(void *p, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    free(p);
}

/* The callbacks run with the nested consumer mark when called from inside
 * a consumer call (consumer.h). */
void *mpscq_alloc(const struct mpscq *q, size_t size)
{
    struct mpscq_consumer_mark *m = mpscq_callback_begin();
    void *p = q->alloc_fn(size, q->alloc_arg);
    mpscq_callback_end(m);
    return p;
}

void mpscq_free(const struct mpscq *q, void *p, size_t size)
{
    if (p) {
        struct mpscq_consumer_mark *m = mpscq_callback_begin();
        q->free_fn(p, size, q->alloc_arg);
        mpscq_callback_end(m);
    }
}
