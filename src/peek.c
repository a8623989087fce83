/*
 * peek.c - mpscq_peek: the next message without removing it.
 *
 * The consumer takes the message as a dequeue would, through the slow
 * path, but does not count it (no `dequeued`, no place freed: it still
 * counts in mpscq_size and holds its place in a bounded queue) and holds
 * it in peek_msg.  `peeked` is half of the fast paths' gate (internal.h),
 * so the next dequeue of any kind goes to the slow path, which delivers
 * the held message first and counts it then.  The fast paths pay nothing:
 * they test the gate already for passed runs.
 */
#include "config.h"

#include "arch.h"
#include "consumer.h"
#include "internal.h"

int mpscq_peek(mpscq_t *q, void **msg)
{
    if (!q || !msg)
        return MPSCQ_INVAL;
    /* Many consumers: a message peeked by one would belong to it. */
    if (q->many)
        return MPSCQ_INVAL;
    int rc = mpscq_consumer_enter(q);
    if (rc != MPSCQ_OK)
        return rc;
    if (q->peeked) {
        *msg = q->peek_msg;
        mpscq_consumer_exit();
        return MPSCQ_OK;
    }
    void *m;
    q->peeking = 1;
    rc = mpscq_dequeue_slow(q, &m);
    q->peeking = 0;
    if (rc == MPSCQ_OK) {
        q->peek_msg = m;
        q->peeked = 1;
        *msg = m;
    }
    mpscq_consumer_exit();
    return rc;
}
