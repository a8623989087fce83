/* hello.c - the README's usage example: 4 producers, 1 consumer. */
#include <mpscq.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

static mpscq_t *q;

static void *producer(void *arg)
{
    for (uintptr_t i = 1; i <= 1000; i++)
        mpscq_enqueue(q, (void *)i);        /* any thread, wait-free */
    return arg;
}

int main(void)
{
    pthread_t t[4];
    mpscq_create(&q, NULL);                 /* unbounded, default segments */
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, producer, NULL);
    uintptr_t sum = 0;
    void *msg;
    for (int got = 0; got < 4000; got++) {
        mpscq_dequeue_wait(q, &msg, -1);    /* sleeps in the kernel when idle */
        sum += (uintptr_t)msg;
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    mpscq_destroy(q, NULL, NULL);
    printf("sum = %lu (expected %lu)\n", (unsigned long)sum, 4UL * 500500UL);
    return sum != 4 * 500500;
}
