/* tsan-prog.c - a downstream program under ThreadSanitizer (tests/
 * tsan-downstream.sh): producers fill message bodies with plain stores,
 * the consumer reads them with plain loads.  Against a library built with
 * --enable-tsan, TSan sees the queue's release/acquire and reports
 * nothing; it exits 66 on any report. */
#include <mpscq.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

struct body {
    unsigned producer;
    unsigned long seq;
    char text[48];
};

static mpscq_t *q;
enum { PRODUCERS = 4, PER = 20000 };

static void *producer(void *arg)
{
    unsigned id = (unsigned)(size_t)arg;
    mpscq_producer_t *h = NULL;
    if (id & 1 && mpscq_producer_create(q, &h) != MPSCQ_OK)
        abort();
    for (unsigned long i = 0; i < PER; i++) {
        struct body *b = malloc(sizeof *b);
        if (!b)
            abort();
        b->producer = id;
        b->seq = i;
        snprintf(b->text, sizeof b->text, "message %lu of producer %u", i, id);
        int rc;
        if (h) {
            while ((rc = mpscq_producer_enqueue(h, b)) == MPSCQ_FULL)
                sched_yield();
        } else {
            rc = mpscq_enqueue_wait(q, b, -1);
        }
        if (rc != MPSCQ_OK)
            abort();
    }
    mpscq_producer_destroy(h);
    return NULL;
}

int main(void)
{
    mpscq_config cfg;
    mpscq_config_init(&cfg);
    cfg.capacity = 256;
    if (mpscq_create(&q, &cfg) != MPSCQ_OK)
        return 1;
    pthread_t t[PRODUCERS];
    for (size_t i = 0; i < PRODUCERS; i++)
        pthread_create(&t[i], NULL, producer, (void *)i);
    unsigned long next[PRODUCERS] = { 0 };
    for (unsigned long got = 0; got < (unsigned long)PRODUCERS * PER; got++) {
        void *m;
        if (mpscq_dequeue_wait(q, &m, -1) != MPSCQ_OK)
            return 2;
        struct body *b = m;
        char want[48];
        snprintf(want, sizeof want, "message %lu of producer %u", b->seq, b->producer);
        if (b->producer >= PRODUCERS || b->seq != next[b->producer]++)
            return 3;
        for (size_t k = 0; want[k] || b->text[k]; k++)
            if (want[k] != b->text[k])
                return 4;
        free(b);
    }
    for (size_t i = 0; i < PRODUCERS; i++)
        pthread_join(t[i], NULL);
    mpscq_destroy(q, NULL, NULL);
    printf("tsan-prog: %d messages, bodies intact\n", PRODUCERS * PER);
    return 0;
}
