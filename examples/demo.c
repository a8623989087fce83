/*
 * demo.c - libmpscq against a pthread mutex + ring, measured in one run.
 *
 *   demo [-p PRODUCERS] [-n MESSAGES] [-r REPEATS] [-R RATE]
 *
 * 1. Throughput: P producers send n messages in total as fast as they can;
 *    one consumer receives and verifies them (no loss, no duplicate,
 *    per-producer FIFO).  Median of the repeats, in million messages/s.
 * 2. Latency at a fixed offered rate (default 100 000 msg/s in total):
 *    enqueue call latency and end-to-end (enqueue -> dequeue) latency,
 *    p50/p99/p99.9/max in ns, with a polling consumer for both queues.
 * Figures move 3-4x between runs on a shared VM: compare the ratios,
 * which are measured side by side.
 */
#include <mpscq.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the two queues behind one small interface ---- */
struct ring {
    pthread_mutex_t lock;
    void **buf;
    size_t mask, head, tail;
};

struct queue {
    const char *name;
    mpscq_t *mq;
    struct ring *ring;
};

static int q_enqueue(struct queue *q, void *m)
{
    if (q->mq)
        return mpscq_enqueue(q->mq, m) == MPSCQ_OK;
    struct ring *r = q->ring;
    pthread_mutex_lock(&r->lock);
    int ok = r->tail - r->head <= r->mask;
    if (ok)
        r->buf[r->tail++ & r->mask] = m;
    pthread_mutex_unlock(&r->lock);
    return ok;
}

static int q_dequeue(struct queue *q, void **m)
{
    if (q->mq)
        return mpscq_dequeue(q->mq, m) == MPSCQ_OK;
    struct ring *r = q->ring;
    pthread_mutex_lock(&r->lock);
    int ok = r->head != r->tail;
    if (ok)
        *m = r->buf[r->head++ & r->mask];
    pthread_mutex_unlock(&r->lock);
    return ok;
}

static void q_open(struct queue *q, int mutex)
{
    memset(q, 0, sizeof *q);
    if (!mutex) {
        q->name = "libmpscq";
        if (mpscq_create(&q->mq, NULL) != MPSCQ_OK)
            exit(1);
        return;
    }
    q->name = "mutex+ring";
    q->ring = calloc(1, sizeof *q->ring);
    pthread_mutex_init(&q->ring->lock, NULL);
    q->ring->mask = (1u << 16) - 1;
    q->ring->buf = malloc((q->ring->mask + 1) * sizeof(void *));
}

static void q_close(struct queue *q)
{
    if (q->mq) {
        mpscq_destroy(q->mq, NULL, NULL);
        return;
    }
    pthread_mutex_destroy(&q->ring->lock);
    free(q->ring->buf);
    free(q->ring);
}

/* ---- workloads ---- */
static int P = 8;
static uint64_t N = 4000000;
static int REPEATS = 5;
static double RATE = 100000;

struct prod {
    struct queue *q;
    unsigned id;
    uint64_t n;
    double interval_ns;        /* 0 = flat out */
    uint64_t *stamps;          /* latency mode: enqueue start time per message */
    uint64_t *lat;             /* latency mode: enqueue call latency */
    volatile int *go;
};

static void *producer(void *p)
{
    struct prod *a = p;
    while (!*a->go)
        sched_yield();
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < a->n; i++) {
        void *m = (void *)(((uintptr_t)a->id << 40) | (uintptr_t)i);
        if (a->interval_ns > 0) {
            uint64_t due = t0 + (uint64_t)(a->interval_ns * (double)i);
            while (now_ns() < due)
                sched_yield();
            uint64_t s = now_ns();
            a->stamps[i] = s;
            while (!q_enqueue(a->q, m))
                sched_yield();
            a->lat[i] = now_ns() - s;
        } else {
            while (!q_enqueue(a->q, m))
                sched_yield();
        }
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return v[n / 2];
}

/* Runs one workload; returns million msg/s; fills e2e latencies if asked. */
static double run(int mutex, double rate, uint64_t total, uint64_t *enq_lat,
                  uint64_t *e2e_lat, uint64_t *cnt)
{
    struct queue q;
    q_open(&q, mutex);
    pthread_t th[64];
    struct prod a[64];
    volatile int go = 0;
    uint64_t per = total / (uint64_t)P;
    uint64_t **stamps = calloc((size_t)P, sizeof *stamps);
    for (int i = 0; i < P; i++) {
        a[i] = (struct prod){ &q, (unsigned)i, per, 0, NULL, NULL, &go };
        if (rate > 0) {
            a[i].interval_ns = 1e9 * P / rate;
            stamps[i] = a[i].stamps = malloc(per * sizeof(uint64_t));
            a[i].lat = enq_lat + (size_t)i * per;
        }
        pthread_create(&th[i], NULL, producer, &a[i]);
    }
    uint64_t *next = calloc((size_t)P, sizeof *next);
    uint64_t got = 0, all = per * (uint64_t)P;
    uint64_t t0 = now_ns();
    go = 1;
    while (got < all) {
        void *m;
        if (!q_dequeue(&q, &m))
            continue;
        uintptr_t v = (uintptr_t)m;
        unsigned id = (unsigned)(v >> 40);
        uint64_t seq = v & (((uintptr_t)1 << 40) - 1);
        if (id >= (unsigned)P || seq != next[id]) {
            fprintf(stderr, "%s: delivery error: producer %u seq %llu, expected %llu\n",
                    q.name, id, (unsigned long long)seq,
                    (unsigned long long)(id < (unsigned)P ? next[id] : 0));
            exit(1);
        }
        if (e2e_lat)
            e2e_lat[got] = now_ns() - stamps[id][seq];
        next[id]++;
        got++;
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    for (int i = 0; i < P; i++) {
        pthread_join(th[i], NULL);
        free(stamps[i]);
    }
    free(stamps);
    free(next);
    q_close(&q);
    *cnt = all;
    return (double)all / secs / 1e6;
}

static void pct(const char *label, uint64_t *v, uint64_t n)
{
    qsort(v, n, sizeof *v, cmp_u64);
    printf("  %-26s p50 %6llu  p99 %7llu  p99.9 %8llu  max %9llu\n", label,
           (unsigned long long)v[n / 2], (unsigned long long)v[n * 99 / 100],
           (unsigned long long)v[n * 999 / 1000], (unsigned long long)v[n - 1]);
}

int main(int argc, char **argv)
{
    int opt;
    while ((opt = getopt(argc, argv, "p:n:r:R:")) != -1) {
        switch (opt) {
        case 'p': P = atoi(optarg); break;
        case 'n': N = strtoull(optarg, NULL, 10); break;
        case 'r': REPEATS = atoi(optarg); break;
        case 'R': RATE = atof(optarg); break;
        default:
            fprintf(stderr, "usage: %s [-p producers] [-n messages] [-r repeats] [-R rate]\n", argv[0]);
            return 2;
        }
    }
    if (P < 1 || P > 64 || REPEATS < 1 || REPEATS > 99 || N < (uint64_t)P) {
        fprintf(stderr, "demo: bad arguments\n");
        return 2;
    }
    printf("libmpscq demo (%s hot path): %d producers, 1 consumer, %ld CPUs online\n",
           mpscq_implementation(), P, sysconf(_SC_NPROCESSORS_ONLN));
    printf("every run verified: no loss, no duplicate, per-producer FIFO\n\n");

    double thr[2][100], med[2];
    uint64_t cnt;
    printf("Throughput, %llu messages, median of %d (million msg/s):\n",
           (unsigned long long)N, REPEATS);
    for (int r = 0; r < REPEATS; r++)
        for (int m = 0; m < 2; m++) /* interleaved, so drift hits both */
            thr[m][r] = run(m, 0, N, NULL, NULL, &cnt);
    for (int m = 0; m < 2; m++) {
        med[m] = median(thr[m], REPEATS);
        printf("  %-12s %7.2f   (min %.2f, max %.2f)\n", m ? "mutex+ring" : "libmpscq",
               med[m], thr[m][0], thr[m][REPEATS - 1]);
    }
    printf("  ratio libmpscq / mutex+ring: %.2fx\n\n", med[0] / med[1]);

    uint64_t lat_n = (uint64_t)(RATE * 1.0); /* one second of traffic */
    lat_n -= lat_n % (uint64_t)P;
    uint64_t *enq = malloc(lat_n * sizeof *enq), *e2e = malloc(lat_n * sizeof *e2e);
    printf("Latency at %.0f msg/s offered (%llu messages, ns):\n", RATE,
           (unsigned long long)lat_n);
    for (int m = 0; m < 2; m++) {
        run(m, RATE, lat_n, enq, e2e, &cnt);
        printf(" %s\n", m ? "mutex+ring" : "libmpscq");
        pct("enqueue call", enq, cnt);
        pct("enqueue -> dequeue", e2e, cnt);
    }
    free(enq);
    free(e2e);
    return 0;
}
