/*
 * workload.c - runs one configuration of one queue and measures it.
 *
 * The calling thread is the consumer; P producer threads are started,
 * each allocates its adapter context, then all wait for one start flag.
 * Messages encode (producer, sequence) and the consumer verifies every
 * one.  Latencies are taken in clock ticks (bench_ticks) into arrays
 * allocated before the run, and converted to ns at the end.
 */
#include "config.h"
#include "workload.h"
#include "clock.h"
#include "annotate.h" /* Helgrind: the harness's own hand-offs */

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define EMPTY_SAMPLES (1u << 18)  /* ring of empty-dequeue samples */
#define FULL_SAMPLES (1u << 16)   /* per producer, first ones kept */
#define MAX_BATCH 1024

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ __volatile__("pause");
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* The one back-off every queue gets on FULL (producers) and on EMPTY
 * (flat-out consumer): spin briefly, then give the CPU away, which on an
 * oversubscribed machine is what lets the other side make progress. */
static inline void relax(unsigned *spins)
{
    if (++*spins < 64)
        cpu_relax();
    else
        sched_yield();
}

struct shared {
    const struct bench_cfg *cfg;
    void *q;
    uint64_t per;                 /* messages each producer may send */
    atomic_uint ready;            /* producers with a context */
    atomic_uint failed;           /* producers that could not start */
    atomic_int go;                /* 1: start sending */
    atomic_int stop;              /* 1: duration over, stop sending */
    atomic_uint done;             /* producers finished */
    uint64_t t0_ns;               /* schedule origin (rate mode) */
    uint64_t **stamps;            /* [producer][seq] enqueue start, ticks */
};

struct producer {
    struct shared *s;
    unsigned id;
    pthread_t th;
    uint64_t sent;
    uint64_t *enq;                /* [seq] enqueue call ticks (latency) */
    uint64_t *full;               /* FULL call ticks, first FULL_SAMPLES */
    uint64_t nfull;
};

static void *producer_main(void *arg)
{
    struct producer *p = arg;
    struct shared *s = p->s;
    const struct bench_cfg *c = s->cfg;
    const struct bench_adapter *a = c->a;
    void *pc = a->producer(s->q, p->id);
    MPSCQ_HB_BEFORE(&s->ready);
    /* release: the context exists before the consumer counts it ready. */
    atomic_fetch_add_explicit(pc ? &s->ready : &s->failed, 1, memory_order_release);
    if (!pc)
        return NULL;
    /* acquire: pairs with the consumer's release of go (t0_ns is set). */
    while (!atomic_load_explicit(&s->go, memory_order_acquire))
        sched_yield();
    MPSCQ_HB_AFTER(&s->go);

    unsigned b = c->batch ? c->batch : 1;
    void *msgs[MAX_BATCH];
    double interval = c->rate > 0 ? 1e9 * c->producers / c->rate : 0;
    uint64_t seq = 0;
    unsigned spins = 0;
    while (seq < s->per) {
        /* relaxed: stop is a hint; the consumer waits on done anyway. */
        if (c->seconds > 0 && c->rate <= 0 && (seq & 63) == 0 &&
            atomic_load_explicit(&s->stop, memory_order_relaxed))
            break;
        unsigned n = s->per - seq < b ? (unsigned)(s->per - seq) : b;
        for (unsigned i = 0; i < n; i++)
            msgs[i] = bench_msg(p->id, seq + i);
        if (interval > 0) {
            /* Producers are spread across one interval, each on an
             * absolute schedule: a late producer catches up.  With a
             * polling consumer (latency mode) they wait by yielding, so
             * no timer interrupt lands inside a timed call; with a
             * sleeping consumer they sleep, as an idle program would. */
            uint64_t due = s->t0_ns + (uint64_t)(interval * ((double)seq +
                                                             (double)p->id / c->producers));
            if (c->consumer == BENCH_POLL)
                while (bench_now_ns() < due)
                    sched_yield();
            else if (bench_now_ns() < due)
                bench_sleep_until_ns(due);
        }
        for (;;) {
            uint64_t t0 = 0;
            if (c->latency) {
                t0 = bench_ticks();
                for (unsigned i = 0; i < n; i++)
                    s->stamps[p->id][seq + i] = t0;
            }
            int rc = n == 1 ? a->enqueue(pc, msgs[0]) : a->enqueue_batch(pc, msgs, n);
            if (c->latency) {
                uint64_t dt = bench_ticks_end() - t0;
                if (rc == BENCH_OK)
                    p->enq[seq] = dt;
                else if (p->nfull < FULL_SAMPLES)
                    p->full[p->nfull++] = dt;
            }
            if (rc == BENCH_OK)
                break;
            relax(&spins);
        }
        spins = 0;
        seq += n;
    }
    p->sent = seq;
    a->producer_done(pc);
    MPSCQ_HB_BEFORE(&s->done);
    /* release: every enqueue above happens before the consumer sees done. */
    atomic_fetch_add_explicit(&s->done, 1, memory_order_release);
    return NULL;
}

long bench_rss_kib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static double cpu_of(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* The whole process's CPU time. */
static double cpu_now(void)
{
    return cpu_of(RUSAGE_SELF);
}

/* The calling (consumer) thread's. */
static double cpu_thread_now(void)
{
#ifdef RUSAGE_THREAD
    return cpu_of(RUSAGE_THREAD);
#else
    return 0;
#endif
}

static void ticks_pct(uint64_t *v, size_t n, struct bench_pct *out)
{
    bench_percentiles(v, n, out);
    double k = bench_ns_per_tick();
    out->p50 = (uint64_t)(out->p50 * k + 0.5);
    out->p99 = (uint64_t)(out->p99 * k + 0.5);
    out->p999 = (uint64_t)(out->p999 * k + 0.5);
    out->max = (uint64_t)(out->max * k + 0.5);
}

/* The consumer's take of up to `max` messages (one unless batching). */
static size_t take(const struct bench_cfg *c, void *q, void **m, size_t max)
{
    if (max == 1)
        return c->a->dequeue(q, m) == BENCH_OK;
    return c->a->dequeue_batch(q, m, max);
}

int bench_run(const struct bench_cfg *c, struct bench_result *r)
{
    if (c->consumers > 1)
        return bench_run_many(c, r);
    memset(r, 0, sizeof *r);
    bench_clock_init();
    unsigned P = c->producers;
    unsigned b = c->batch ? c->batch : 1;
    if (P < 1 || b > MAX_BATCH)
        return -1;
    struct shared s = { .cfg = c };
    MPSCQ_HG_ATOMIC_VAR(s.ready);
    MPSCQ_HG_ATOMIC_VAR(s.failed);
    MPSCQ_HG_ATOMIC_VAR(s.go);
    MPSCQ_HG_ATOMIC_VAR(s.stop);
    MPSCQ_HG_ATOMIC_VAR(s.done);
    if (c->rate > 0)
        s.per = (uint64_t)(c->rate * c->seconds / P);
    else
        s.per = c->messages / P;
    if (s.per < 1)
        s.per = 1;
    uint64_t total = s.per * P;
    struct bench_run_shape shape = { c->capacity, P, s.per, 1 };

    /* Everything the measurement needs is allocated first, so that the
     * heap and RSS figures below see the queue alone. */
    struct producer *pr = calloc(P, sizeof *pr);
    uint64_t *sent = calloc(P, sizeof *sent);
    uint64_t *deq = NULL, *e2e = NULL, *empty = NULL;
    struct bench_verify v = { 0 }; /* freed on every path below */
    int err = !pr || !sent || bench_verify_init(&v, P) != 0;
    if (!err && c->latency) {
        s.stamps = calloc(P, sizeof *s.stamps);
        deq = malloc(total * sizeof *deq);
        e2e = malloc(total * sizeof *e2e);
        empty = malloc(EMPTY_SAMPLES * sizeof *empty);
        err = !s.stamps || !deq || !e2e || !empty;
        for (unsigned i = 0; !err && i < P; i++) {
            s.stamps[i] = malloc(s.per * sizeof **s.stamps);
            pr[i].enq = malloc(s.per * sizeof *pr[i].enq);
            pr[i].full = malloc(FULL_SAMPLES * sizeof *pr[i].full);
            err = !s.stamps[i] || !pr[i].enq || !pr[i].full;
            if (!err) { /* touch now: no page faults inside the run */
                memset(s.stamps[i], 0, s.per * sizeof **s.stamps);
                memset(pr[i].enq, 0, s.per * sizeof *pr[i].enq);
            }
        }
        if (!err) {
            memset(deq, 0, total * sizeof *deq);
            memset(e2e, 0, total * sizeof *e2e);
        }
    }
    void **buf = malloc(MAX_BATCH * sizeof *buf);
    if (err || !buf) {
        fprintf(stderr, "mpscq-bench: out of memory for %llu messages\n",
                (unsigned long long)total);
        r->verified = 0;
        snprintf(r->verdict, sizeof r->verdict, "not run: out of memory");
        goto out;
    }

    r->rss_before_kib = bench_rss_kib();
    s.q = c->a->create(&shape);
    if (!s.q) {
        snprintf(r->verdict, sizeof r->verdict, "not run: %s could not be created", c->a->name);
        err = 1;
        goto out;
    }
    unsigned started = 0;
    for (; started < P; started++) {
        pr[started].s = &s;
        pr[started].id = started;
        if (pthread_create(&pr[started].th, NULL, producer_main, &pr[started]) != 0)
            break;
    }
    /* acquire: pairs with the producers' release of ready/failed. */
    while (atomic_load_explicit(&s.ready, memory_order_acquire) +
               atomic_load_explicit(&s.failed, memory_order_acquire) < started)
        sched_yield();
    MPSCQ_HB_AFTER(&s.ready);
    /* Relaxed: failed is final once every producer has reported (the
     * acquire loop above); stop is a hint the producers poll. */
    int startup_failed = started < P || atomic_load_explicit(&s.failed, memory_order_relaxed);
    if (startup_failed)
        atomic_store_explicit(&s.stop, 1, memory_order_relaxed);

    uint64_t nempty = 0, got = 0, ndeq = 0, ne2e = 0;
    double cpu0 = cpu_now(), ccpu0 = cpu_thread_now();
    s.t0_ns = bench_now_ns() + 1000000; /* first paced send 1 ms from now */
    uint64_t t_go = bench_now_ns();
    uint64_t t_stop = c->seconds > 0 && c->rate <= 0 ? t_go + (uint64_t)(c->seconds * 1e9) : 0;
    MPSCQ_HB_BEFORE(&s.go);
    /* release: t0_ns and the adapter's state are visible to producers. */
    atomic_store_explicit(&s.go, 1, memory_order_release);

    if (c->consumer == BENCH_HOLD) {
        /* acquire: each producer's enqueues happen before its done;
         * relaxed failed: final, as above. */
        while (atomic_load_explicit(&s.done, memory_order_acquire) <
               started - atomic_load_explicit(&s.failed, memory_order_relaxed))
            bench_sleep_until_ns(bench_now_ns() + 200000);
        MPSCQ_HB_AFTER(&s.done);
        /* Resident growth, not heap growth: libmpscq's segments (and a
         * presized ring's untouched pages) are outside malloc's heap. */
        r->rss_peak_kib = bench_rss_kib();
        r->bytes_per_msg = r->rss_peak_kib > r->rss_before_kib
                               ? (double)(r->rss_peak_kib - r->rss_before_kib) * 1024.0 / (double)total
                               : 0;
    }
    uint64_t t_drain = bench_now_ns();
    unsigned spins = 0, naps = 0;
    /* Verifies what was taken and, when timing, records each message's
     * end-to-end latency: from just before its enqueue call to just
     * after the dequeue that returned it (t1). */
#define DELIVER(n)                                                              \
    do {                                                                        \
        for (size_t i_ = 0; i_ < (n); i_++) {                                   \
            bench_verify_msg(&v, buf[i_]);                                      \
            unsigned id_ = bench_msg_producer(buf[i_]);                         \
            uint64_t seq_ = bench_msg_seq(buf[i_]);                             \
            if (c->latency && id_ < P && seq_ < s.per && ne2e < total)          \
                e2e[ne2e++] = t1 - s.stamps[id_][seq_];                         \
        }                                                                       \
        got += (n);                                                             \
    } while (0)
    uint64_t t1 = 0;
    for (;;) {
        size_t n;
        uint64_t t0 = 0;
        if (c->latency && c->consumer == BENCH_POLL)
            t0 = bench_ticks();
        if (c->consumer == BENCH_BLOCK && b == 1) {
            if (c->a->dequeue_wait) {
                /* A long timeout: in a sound run every wait ends with a
                 * message (the loop stops at the last one), so it only
                 * expires when something was lost.  (It also keeps glibc's
                 * timed condition-variable wait of the mutex baseline out
                 * of its timeout-versus-signal path, which Helgrind
                 * misreads as a signal without the lock.) */
                n = c->a->dequeue_wait(s.q, buf, 1000000000) == BENCH_OK;
            } else {
                n = take(c, s.q, buf, 1);
                if (!n && ++naps > 100) {
                    naps = 0;
                    bench_sleep_until_ns(bench_now_ns() + 50000);
                }
            }
        } else {
            n = take(c, s.q, buf, c->consumer == BENCH_HOLD ? MAX_BATCH : b);
        }
        if (c->latency) {
            t1 = bench_ticks_end();
            if (c->consumer == BENCH_POLL) {
                if (n)
                    deq[ndeq++] = (t1 - t0) / n;
                else {
                    empty[nempty++ & (EMPTY_SAMPLES - 1)] = t1 - t0;
                    /* Some 64 empty polls (a few us): let a runnable
                     * producer on; under Valgrind's one-thread-at-a-time,
                     * or on an oversubscribed machine, it may be the one
                     * we wait for.  Outside any timed call. */
                    if (nempty % 64 == 0)
                        sched_yield();
                }
            }
        }
        DELIVER(n);
        if (n) {
            spins = 0;
            if (got >= total)
                break;
            continue;
        }
        if (t_stop && bench_now_ns() >= t_stop) /* relaxed: a hint, see above */
            atomic_store_explicit(&s.stop, 1, memory_order_relaxed);
        /* acquire: a producer's enqueues happen before its done, so an
         * empty take after all are done means nothing is left (relaxed
         * failed: final, as above). */
        if (atomic_load_explicit(&s.done, memory_order_acquire) +
                atomic_load_explicit(&s.failed, memory_order_relaxed) >= started) {
            MPSCQ_HB_AFTER(&s.done);
            n = take(c, s.q, buf, MAX_BATCH);
            if (c->latency)
                t1 = bench_ticks_end();
            DELIVER(n);
            if (!n)
                break;
            continue;
        }
        if (!c->latency && c->consumer != BENCH_BLOCK)
            relax(&spins);
    }
    uint64_t t_end = bench_now_ns();
    for (unsigned i = 0; i < started; i++)
        pthread_join(pr[i].th, NULL);
    r->cpu_seconds = cpu_now() - cpu0;
    double consumer_cpu = cpu_thread_now() - ccpu0;
    if (c->consumer == BENCH_HOLD) {
        /* The drain is over when the consumer finds the queue idle (a
         * queue may keep drained memory for reuse until then: libmpscq's
         * pool does until two empty polls in a row).  Anything taken here
         * is extra and fails the run. */
        for (int k = 0; k < 2; k++) {
            size_t extra = take(c, s.q, buf, MAX_BATCH);
            DELIVER(extra);
        }
        r->rss_after_kib = bench_rss_kib();
        r->drain_mmsgs = got / ((double)(t_end - t_drain) / 1e3);
    }
    c->a->destroy(s.q);

    for (unsigned i = 0; i < P; i++)
        sent[i] = pr[i].sent;
    r->verified = bench_verify_finish(&v, sent) && !startup_failed;
    bench_verify_describe(&v, r->verdict, sizeof r->verdict);
    if (startup_failed)
        snprintf(r->verdict, sizeof r->verdict, "not run: a producer could not start");
    r->messages = got;
    r->seconds = (double)(t_end - t_go) / 1e9;
    r->mmsgs = r->seconds > 0 ? got / r->seconds / 1e6 : 0;
    r->cpu_ns_per_msg = got ? r->cpu_seconds * 1e9 / got : 0;
    r->cpu_pct = r->seconds > 0 ? 100.0 * r->cpu_seconds / r->seconds : 0;
    r->consumer_cpu_pct = r->seconds > 0 ? 100.0 * consumer_cpu / r->seconds : 0;
    if (c->latency) {
        uint64_t ne = 0, nf = 0;
        for (unsigned i = 0; i < P; i++)
            nf += pr[i].nfull;
        uint64_t *enq = malloc(total * sizeof *enq), *full = malloc((nf + 1) * sizeof *full);
        if (enq && full) {
            for (unsigned i = 0; i < P; i++)
                for (uint64_t k = 0; k < pr[i].sent; k += b)
                    enq[ne++] = pr[i].enq[k];
            uint64_t fi = 0;
            for (unsigned i = 0; i < P; i++)
                for (uint64_t k = 0; k < pr[i].nfull; k++)
                    full[fi++] = pr[i].full[k];
            ticks_pct(enq, ne, &r->enq);
            ticks_pct(full, fi, &r->full);
        }
        free(enq);
        free(full);
        ticks_pct(deq, ndeq, &r->deq);
        ticks_pct(empty, nempty < EMPTY_SAMPLES ? nempty : EMPTY_SAMPLES, &r->empty);
        ticks_pct(e2e, ne2e, &r->e2e);
    }
out:
    if (s.stamps)
        for (unsigned i = 0; i < P; i++)
            free(s.stamps[i]);
    if (pr)
        for (unsigned i = 0; i < P; i++) {
            free(pr[i].enq);
            free(pr[i].full);
        }
    free(s.stamps);
    free(deq);
    free(e2e);
    free(empty);
    free(buf);
    free(pr);
    free(sent);
    bench_verify_free(&v);
    return err ? -1 : 0;
}

/* ---- full-enqueue and empty-dequeue probe ---------------------------- */

struct probe_arg {
    const struct bench_adapter *a;
    void *q;
    unsigned id;
    uint64_t attempts;
    uint64_t *lat;
    uint64_t accepted;
    atomic_int *go;
    pthread_t th;
};

static void *probe_main(void *arg)
{
    struct probe_arg *p = arg;
    void *pc = p->a->producer(p->q, p->id);
    /* acquire: the queue was filled before go. */
    while (!atomic_load_explicit(p->go, memory_order_acquire))
        sched_yield();
    MPSCQ_HB_AFTER(p->go);
    for (uint64_t i = 0; pc && i < p->attempts; i++) {
        uint64_t t0 = bench_ticks();
        int rc = p->a->enqueue(pc, bench_msg(p->id, 0));
        p->lat[i] = bench_ticks_end() - t0;
        if (rc == BENCH_OK)
            p->accepted++;
    }
    if (pc)
        p->a->producer_done(pc);
    else
        p->accepted = 1; /* reported as a failure */
    return NULL;
}

int bench_probe(const struct bench_adapter *a, unsigned producers, size_t capacity,
                uint64_t attempts, struct bench_pct *full, struct bench_pct *empty)
{
    memset(full, 0, sizeof *full);
    memset(empty, 0, sizeof *empty);
    bench_clock_init();
    if (!(a->flags & BENCH_BOUNDED) || capacity < 1 || producers < 1)
        return -1;
    /* The filler is producer `producers`, so each thread has its own id. */
    struct bench_run_shape shape = { capacity, producers + 1, capacity + attempts, 1 };
    void *q = a->create(&shape);
    if (!q)
        return -1;
    int rc = -1;
    uint64_t *lat = malloc(producers * attempts * sizeof *lat);
    struct probe_arg *pa = calloc(producers, sizeof *pa);
    void *fill = lat && pa ? a->producer(q, producers) : NULL;
    if (!fill)
        goto out;
    size_t queued = 0;
    while (queued < capacity && a->enqueue(fill, bench_msg(producers, queued)) == BENCH_OK)
        queued++;
    a->producer_done(fill);
    if (queued != capacity)
        goto drain;
    atomic_int go = 0;
    MPSCQ_HG_ATOMIC_VAR(go);
    unsigned started = 0;
    for (; started < producers; started++) {
        pa[started] = (struct probe_arg){ a, q, started, attempts,
                                          lat + started * attempts, 0, &go, 0 };
        if (pthread_create(&pa[started].th, NULL, probe_main, &pa[started]) != 0)
            break;
    }
    MPSCQ_HB_BEFORE(&go);
    /* release: the filled queue is visible before the probes start. */
    atomic_store_explicit(&go, 1, memory_order_release);
    uint64_t accepted = 0;
    for (unsigned i = 0; i < started; i++) {
        pthread_join(pa[i].th, NULL);
        accepted += pa[i].accepted;
    }
    if (started == producers && accepted == 0) {
        ticks_pct(lat, producers * attempts, full);
        rc = 0;
    }
drain:;
    /* Drain and check what the filler sent, then time empty dequeues. */
    void *m;
    size_t taken = 0;
    while (a->dequeue(q, &m) == BENCH_OK) {
        if (m != bench_msg(producers, taken))
            rc = -1;
        taken++;
    }
    if (taken != queued)
        rc = -1;
    for (uint64_t i = 0; rc == 0 && i < producers * attempts; i++) {
        uint64_t t0 = bench_ticks();
        int got = a->dequeue(q, &m) == BENCH_OK;
        lat[i] = bench_ticks_end() - t0;
        if (got)
            rc = -1;
    }
    if (rc == 0)
        ticks_pct(lat, producers * attempts, empty);
out:
    a->destroy(q);
    free(lat);
    free(pa);
    return rc;
}
