/* lanes.c - three priority lanes served by one sleeping worker through a
 * queue set: "urgent" (priority 0, a trickle), "normal" (1, a steady
 * stream) and "bulk"
 * (2, a flood behind a bounded queue, its producers blocked in
 * mpscq_enqueue_wait while it is full).  With fairness 16 the bulk lane
 * is never starved for more than 16 messages.  The lanes are closed at
 * the end and the worker drains them until the set says CLOSED.
 *   examples/lanes [BULK_MESSAGES_PER_PRODUCER]
 * Prints, as JSON, each lane's count and enqueue-to-dequeue latency
 * (p50, p95) and the total rate; checks that every message arrived once,
 * in each producer's order. */
#include <mpscq.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { LANES = 3, PER_LANE = 2 };
static const char *const lane_name[LANES] = { "urgent", "normal", "bulk" };
static mpscq_t *lane[LANES];
static unsigned long count[LANES]; /* messages per producer of each lane */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A message: the producer's number and sequence, and when it was sent. */
struct msg {
    unsigned producer;
    unsigned long seq;
    uint64_t sent;
};

static void *producer(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg, l = id / PER_LANE;
    for (unsigned long i = 0; i < count[l]; i++) {
        struct msg *m = malloc(sizeof *m);
        if (!m)
            abort();
        *m = (struct msg){ id, i, now_ns() };
        /* The bulk lane is bounded: wait for a place.  The others are
         * unbounded and never wait. */
        if (mpscq_enqueue_wait(lane[l], m, -1) != MPSCQ_OK)
            abort();
        if (l == 0 || (l == 1 && i % 8 == 7)) {
            /* urgent: one message, normal: eight, then a pause */
            struct timespec gap = { 0, l == 0 ? 100000 : 20000 };
            nanosleep(&gap, NULL);
        }
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    count[2] = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;
    count[1] = count[2] / 10 ? count[2] / 10 : 1;
    count[0] = 2000;
    mpscq_set_t *set;
    if (mpscq_set_create(&set) != MPSCQ_OK || mpscq_set_fairness(set, 16) != MPSCQ_OK)
        return 1;
    for (unsigned l = 0; l < LANES; l++) {
        mpscq_config cfg;
        mpscq_config_init(&cfg);
        cfg.capacity = l == 2 ? 1024 : 0;
        if (mpscq_create(&lane[l], &cfg) != MPSCQ_OK || mpscq_set_add(set, lane[l], l) != MPSCQ_OK)
            return 1;
    }
    uint64_t *lat[LANES];
    unsigned long got[LANES] = { 0 }, next[LANES * PER_LANE] = { 0 };
    for (unsigned l = 0; l < LANES; l++)
        if (!(lat[l] = malloc(PER_LANE * count[l] * sizeof *lat[l])))
            return 1;

    uint64_t t0 = now_ns();
    pthread_t t[LANES * PER_LANE];
    for (uintptr_t i = 0; i < LANES * PER_LANE; i++)
        pthread_create(&t[i], NULL, producer, (void *)i);

    /* The worker: the main thread, asleep in the set when there is
     * nothing to do.  The last lane to finish closes everything. */
    unsigned long total = 0, want = 0;
    for (unsigned l = 0; l < LANES; l++)
        want += PER_LANE * count[l];
    int bad = 0;
    for (;;) {
        mpscq_t *from;
        void *p;
        int rc = mpscq_set_dequeue_wait(set, &from, &p, -1);
        if (rc == MPSCQ_CLOSED)
            break;
        if (rc != MPSCQ_OK) {
            fprintf(stderr, "lanes: %s\n", mpscq_strerror(rc));
            return 1;
        }
        struct msg *m = p;
        unsigned l = m->producer / PER_LANE;
        if (from != lane[l] || m->seq != next[m->producer]++)
            bad = 1;
        lat[l][got[l]++] = now_ns() - m->sent;
        free(m);
        if (++total == want) {
            /* Everything came: close the lanes; the set then says CLOSED. */
            for (unsigned i = 0; i < LANES; i++)
                mpscq_close(lane[i]);
        }
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    for (unsigned i = 0; i < LANES * PER_LANE; i++)
        pthread_join(t[i], NULL);

    printf("{\"messages\": %lu, \"seconds\": %.3f, \"msgs_per_sec\": %.0f, \"lanes\": [",
           total, secs, (double)total / secs);
    for (unsigned l = 0; l < LANES; l++) {
        if (got[l] != PER_LANE * count[l])
            bad = 1;
        qsort(lat[l], got[l], sizeof *lat[l], cmp_u64);
        double p50 = got[l] ? (double)lat[l][got[l] / 2] / 1e3 : 0;
        double p95 = got[l] ? (double)lat[l][got[l] * 95 / 100] / 1e3 : 0;
        printf("%s\n  {\"lane\": \"%s\", \"priority\": %u, \"messages\": %lu, "
               "\"p50_us\": %.1f, \"p95_us\": %.1f}",
               l ? "," : "", lane_name[l], l, got[l], p50, p95);
        free(lat[l]);
    }
    printf("\n], \"verified\": %s}\n", bad ? "false" : "true");
    mpscq_set_destroy(set);
    for (unsigned l = 0; l < LANES; l++)
        mpscq_destroy(lane[l], NULL, NULL);
    return bad;
}
