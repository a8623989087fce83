/*
 * adapter_mutex.c - the baseline: a ring of pointers behind one pthread
 * mutex, the queue most code starts with.  Made as strong as a plain
 * mutex queue gets: batch operations take the lock once, the consumer
 * sleeps on a condition variable that producers signal only when it is
 * waiting, and the unbounded form doubles its ring instead of refusing.
 */
#include "adapter.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct mring {
    pthread_mutex_t lock;
    pthread_cond_t nonempty;
    void **buf;
    size_t size;       /* power of two */
    size_t capacity;   /* 0 = grow */
    uint64_t head, tail;
    int waiting;       /* the consumer sleeps on nonempty */
};

static void *mr_create(const struct bench_run_shape *shape)
{
    struct mring *r = bench_aligned_alloc(sizeof *r);
    if (!r)
        return NULL;
    memset(r, 0, sizeof *r);
    r->capacity = shape->capacity;
    r->size = bench_pow2_at_least(shape->capacity ? shape->capacity : 1024);
    r->buf = malloc(r->size * sizeof *r->buf);
    if (!r->buf) {
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->nonempty, NULL);
    return r;
}

static void mr_destroy(void *q)
{
    struct mring *r = q;
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->nonempty);
    free(r->buf);
    free(r);
}

/* Called with the lock held: room for n more, growing if unbounded. */
static int mr_room(struct mring *r, size_t n)
{
    size_t used = (size_t)(r->tail - r->head);
    if (r->capacity)
        return used + n <= r->capacity;
    if (used + n <= r->size)
        return 1;
    size_t size = bench_pow2_at_least(used + n);
    void **buf = malloc(size * sizeof *buf);
    if (!buf)
        return 0;
    for (size_t i = 0; i < used; i++)
        buf[i] = r->buf[(r->head + i) & (r->size - 1)];
    free(r->buf);
    r->buf = buf;
    r->size = size;
    r->head = 0;
    r->tail = used;
    return 1;
}

static int mr_enqueue_batch(void *q, void *const *msgs, size_t n)
{
    struct mring *r = q;
    pthread_mutex_lock(&r->lock);
    int ok = mr_room(r, n);
    if (ok) {
        for (size_t i = 0; i < n; i++)
            r->buf[r->tail++ & (r->size - 1)] = msgs[i];
        if (r->waiting)
            pthread_cond_signal(&r->nonempty);
    }
    pthread_mutex_unlock(&r->lock);
    return ok ? BENCH_OK : BENCH_FULL;
}

static int mr_enqueue(void *q, void *msg)
{
    return mr_enqueue_batch(q, &msg, 1);
}

static size_t mr_dequeue_batch(void *q, void **msgs, size_t max)
{
    struct mring *r = q;
    pthread_mutex_lock(&r->lock);
    size_t n = (size_t)(r->tail - r->head);
    if (n > max)
        n = max;
    for (size_t i = 0; i < n; i++)
        msgs[i] = r->buf[r->head++ & (r->size - 1)];
    pthread_mutex_unlock(&r->lock);
    return n;
}

static int mr_dequeue(void *q, void **msg)
{
    return mr_dequeue_batch(q, msg, 1) ? BENCH_OK : BENCH_EMPTY;
}

static int mr_dequeue_wait(void *q, void **msg, long long timeout_ns)
{
    struct mring *r = q;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ns / 1000000000;
    until.tv_nsec += timeout_ns % 1000000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&r->lock);
    while (r->head == r->tail) {
        r->waiting = 1;
        int rc = pthread_cond_timedwait(&r->nonempty, &r->lock, &until);
        r->waiting = 0;
        if (rc == ETIMEDOUT && r->head == r->tail) {
            pthread_mutex_unlock(&r->lock);
            return BENCH_EMPTY;
        }
    }
    *msg = r->buf[r->head++ & (r->size - 1)];
    pthread_mutex_unlock(&r->lock);
    return BENCH_OK;
}

const struct bench_adapter bench_adapter_mutex = {
    .name = "mutex+ring",
    .describe = "pthread mutex around a ring (doubling when unbounded); batches take the "
                "lock once; condition variable for the sleeping consumer",
    .flags = BENCH_UNBOUNDED | BENCH_BOUNDED,
    .create = mr_create,
    .destroy = mr_destroy,
    .producer = bench_producer_is_queue,
    .producer_done = bench_producer_done_nothing,
    .enqueue = mr_enqueue,
    .enqueue_batch = mr_enqueue_batch,
    .dequeue = mr_dequeue,
    .dequeue_batch = mr_dequeue_batch,
    .dequeue_wait = mr_dequeue_wait,
    .consumer = bench_producer_is_queue,
    .consumer_done = bench_producer_done_nothing,
    .dequeue_many = mr_dequeue,
};
