/* backpressure.c - 8 producers behind a small bounded queue, each blocked
 * in mpscq_enqueue_wait while it is full; one consumer takes batches with
 * mpscq_dequeue_batch_wait; the queue is closed and drained at the end.
 *   examples/backpressure [CAPACITY [MESSAGES_PER_PRODUCER]]
 * Prints the time, how many enqueues had to wait, and checks that every
 * message arrived once, in each producer's order. */
#include <mpscq.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { PRODUCERS = 8 };
static mpscq_t *q;
static unsigned long per;

static void *producer(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    for (unsigned long i = 0; i < per; i++)
        if (mpscq_enqueue_wait(q, (void *)((id << 48) | i), -1) != MPSCQ_OK)
            abort();
    return NULL;
}

int main(int argc, char **argv)
{
    mpscq_config cfg;
    mpscq_config_init(&cfg);
    cfg.capacity = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
    per = argc > 2 ? strtoul(argv[2], NULL, 10) : 20000;
    if (mpscq_create(&q, &cfg) != MPSCQ_OK)
        return 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t t[PRODUCERS];
    for (uintptr_t i = 0; i < PRODUCERS; i++)
        pthread_create(&t[i], NULL, producer, (void *)i);
    unsigned long next[PRODUCERS] = { 0 }, got = 0;
    void *batch[64];
    size_t n;
    while (got < PRODUCERS * per) {
        if (mpscq_dequeue_batch_wait(q, batch, 64, &n, -1) != MPSCQ_OK)
            return 2;
        for (size_t k = 0; k < n; k++) {
            uintptr_t v = (uintptr_t)batch[k], p = v >> 48;
            if (p >= PRODUCERS || (v & 0xffffffffffffu) != next[p]++)
                return 3;
        }
        got += n;
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(t[i], NULL);
    mpscq_close(q);
    int rc = mpscq_dequeue_batch_wait(q, batch, 64, &n, -1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    struct mpscq_stats st;
    mpscq_stats(q, &st);
    printf("capacity %zu, %d producers x %lu: %.3f s, %llu enqueues waited, "
           "all delivered in order, then %s\n",
           cfg.capacity, PRODUCERS, per,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
           st.producer_waits, mpscq_strerror(rc));
    mpscq_destroy(q, NULL, NULL);
    return rc == MPSCQ_CLOSED ? 0 : 4;
}
