/* install-prog.c - built against an installed libmpscq by install-test.sh. */
#include <mpscq.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

static mpscq_t *q;

static void *producer(void *arg)
{
    for (uintptr_t i = 0; i < 1000; i++)
        if (mpscq_enqueue(q, (void *)(((uintptr_t)arg << 32) | i)) != MPSCQ_OK)
            return (void *)1;
    return NULL;
}

/* The whole check, also called by install-plugin.c from inside a shared
 * object that a program loads with dlopen. */
#ifdef MPSCQ_INSTALL_PLUGIN
int plugin_run(void)
#else
int main(void)
#endif
{
    pthread_t t[4];
    if (strcmp(mpscq_version(), MPSCQ_VERSION_STRING) != 0) {
        fprintf(stderr, "library %s, header %s\n", mpscq_version(), MPSCQ_VERSION_STRING);
        return 3;
    }
    if (mpscq_create(&q, NULL) != MPSCQ_OK)
        return 1;
    for (uintptr_t i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, producer, (void *)i);
    unsigned long got = 0, next[4] = { 0 };
    while (got < 4000) {
        void *m;
        if (mpscq_dequeue(q, &m) != MPSCQ_OK)
            continue;
        uintptr_t v = (uintptr_t)m;
        if ((v & 0xffffffffu) != next[v >> 32]++)
            return 2;
        got++;
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    mpscq_destroy(q, NULL, NULL);
    printf("installed libmpscq %s (%s): 4000 messages ok\n", mpscq_version(), mpscq_implementation());
    return 0;
}
