/* check_concurrent.c - many producers, one consumer: exact delivery. */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

struct prod_arg {
    mpscq_t *q;
    unsigned id;
    uint64_t count;
    size_t batch;            /* 0 or 1: single enqueues; else batch size */
    struct tu_barrier *start;
};

static void *producer(void *p)
{
    struct prod_arg *a = p;
    tu_barrier_wait(a->start);
    uint64_t i = 0;
    void *buf[64];
    while (i < a->count) {
        if (a->batch > 1) {
            size_t n = a->batch;
            if (n > a->count - i)
                n = (size_t)(a->count - i);
            for (size_t k = 0; k < n; k++)
                buf[k] = tu_msg(a->id, i + k);
            int rc = mpscq_enqueue_batch(a->q, buf, n);
            if (rc == MPSCQ_FULL) {
                sched_yield();
                continue;
            }
            ck_assert_int_eq(rc, MPSCQ_OK);
            i += n;
        } else {
            int rc = mpscq_enqueue(a->q, tu_msg(a->id, i));
            if (rc == MPSCQ_FULL) {
                sched_yield();
                continue;
            }
            ck_assert_int_eq(rc, MPSCQ_OK);
            i++;
        }
    }
    return NULL;
}

/* P producers x n messages through a queue with the given shape; the
 * calling thread is the consumer and verifies everything. */
static void run_mpsc(unsigned P, uint64_t n, size_t cap, size_t slots, size_t batch)
{
    mpscq_config c;
    mpscq_config_init(&c);
    c.capacity = cap;
    c.segment_slots = slots;
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    pthread_t th[32];
    struct prod_arg args[32];
    uint64_t expected[32];
    struct tu_barrier start;
    tu_barrier_init(&start, (int)P);
    for (unsigned p = 0; p < P; p++) {
        args[p] = (struct prod_arg){ q, p, n, batch, &start };
        expected[p] = n;
        ck_assert_int_eq(pthread_create(&th[p], NULL, producer, &args[p]), 0);
    }
    size_t got = tu_drain_verify(q, P, expected);
    for (unsigned p = 0; p < P; p++)
        pthread_join(th[p], NULL);
    ck_assert_uint_eq(got, (uint64_t)P * n);
    struct mpscq_stats st;
    mpscq_stats(q, &st);
    ck_assert_uint_eq(st.enqueued, (uint64_t)P * n);
    ck_assert_uint_eq(st.dequeued, (uint64_t)P * n);
    ck_assert_uint_eq(mpscq_size(q), 0);
    mpscq_destroy(q, NULL, NULL);
}

/* The shapes every delivery run uses: producers, messages each (before
 * MPSCQ_STRESS_SCALE; the first is not scaled), capacity, segment slots,
 * batch size. */
static const struct shape {
    unsigned producers;
    uint64_t n;
    size_t cap, slots, batch;
    const char *what;
} shapes[] = {
    { 8, 1000, 0, 0, 1, "8 producers x 1000, defaults" },
    { 16, 100000, 0, 0, 1, "16 producers x 100 000, defaults" },
    /* Two-slot segments: a new segment every second ticket, so linking,
     * hint moves and reclamation race all the time. */
    { 16, 20000, 0, 2, 1, "16 producers, 2-slot segments" },
    { 8, 50000, 64, 16, 1, "8 producers, capacity 64" },
    { 4, 40000, 0, 8, 7, "4 producers, batches of 7" },
    { 4, 40000, 20, 4, 5, "4 producers, batches of 5, capacity 20" },
};

START_TEST(test_delivery)
{
    const struct shape *sh = &shapes[_i];
    uint64_t n = _i == 0 ? sh->n : tu_scaled(sh->n, sh->n / 100);
    ck_assert_msg(n > 0, "%s", sh->what);
    run_mpsc(sh->producers, n, sh->cap, sh->slots, sh->batch);
}
END_TEST

/* Batches come out contiguous: no other message between a batch's
 * messages, even with producers interleaving at full speed. */
START_TEST(test_batch_contiguous)
{
    const unsigned P = 6;
    const size_t B = 5;
    uint64_t n = tu_scaled(30000, 300) / B * B;
    mpscq_config c;
    mpscq_config_init(&c);
    c.segment_slots = 4;
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    pthread_t th[8];
    struct prod_arg args[8];
    struct tu_barrier start;
    tu_barrier_init(&start, (int)P);
    for (unsigned p = 0; p < P; p++) {
        args[p] = (struct prod_arg){ q, p, n, B, &start };
        ck_assert_int_eq(pthread_create(&th[p], NULL, producer, &args[p]), 0);
    }
    uint64_t got = 0, total = (uint64_t)P * n;
    void *prev = NULL;
    while (got < total) {
        void *m;
        if (mpscq_dequeue(q, &m) != MPSCQ_OK) {
            sched_yield();
            continue;
        }
        if (got % B != 0) {
            /* Inside a batch: the same producer, the next sequence. */
            ck_assert_uint_eq(tu_producer(m), tu_producer(prev));
            ck_assert_uint_eq(tu_seq(m), tu_seq(prev) + 1);
        } else {
            ck_assert_uint_eq(tu_seq(m) % B, 0);
        }
        prev = m;
        got++;
    }
    for (unsigned p = 0; p < P; p++)
        pthread_join(th[p], NULL);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* Linearizability across producers: enqueues that do not overlap in time
 * (a token passes from thread to thread after each one returns) must come
 * out in that order, while the consumer races against them. */
struct relay {
    mpscq_t *q;
    _Atomic uint64_t token;
    unsigned threads;
    uint64_t total;
};
struct relay_arg {
    struct relay *r;
    unsigned id;
};

static void *relay_thread(void *p)
{
    struct relay_arg *a = p;
    struct relay *r = a->r;
    for (;;) {
        uint64_t t = atomic_load(&r->token);
        if (t >= r->total)
            return NULL;
        if (t % r->threads != a->id) {
            sched_yield();
            continue;
        }
        ck_assert_int_eq(mpscq_enqueue(r->q, (void *)(uintptr_t)t), MPSCQ_OK);
        atomic_store(&r->token, t + 1);
    }
}

START_TEST(test_realtime_order)
{
    struct relay r;
    mpscq_config c;
    mpscq_config_init(&c);
    c.segment_slots = 4;
    ck_assert_int_eq(mpscq_create(&r.q, &c), MPSCQ_OK);
    atomic_init(&r.token, 0);
    r.threads = 3;
    r.total = tu_scaled(20000, 300);
    pthread_t th[3];
    struct relay_arg a[3];
    for (unsigned i = 0; i < r.threads; i++) {
        a[i] = (struct relay_arg){ &r, i };
        ck_assert_int_eq(pthread_create(&th[i], NULL, relay_thread, &a[i]), 0);
    }
    uint64_t want = 0;
    while (want < r.total) {
        void *m;
        if (mpscq_dequeue(r.q, &m) != MPSCQ_OK) {
            sched_yield();
            continue;
        }
        ck_assert_uint_eq((uintptr_t)m, want);
        want++;
    }
    for (unsigned i = 0; i < r.threads; i++)
        pthread_join(th[i], NULL);
    mpscq_destroy(r.q, NULL, NULL);
}
END_TEST

/* Capacity reached by 8 producers at once: exactly `cap` are accepted,
 * every other attempt gets MPSCQ_FULL, and what is inside is intact. */
struct fill_arg {
    mpscq_t *q;
    unsigned id;
    struct tu_barrier *start;
    uint64_t accepted;
    uint64_t full;
};

static void *filler(void *p)
{
    struct fill_arg *a = p;
    tu_barrier_wait(a->start);
    for (uint64_t i = 0; i < 1000; i++) {
        int rc = mpscq_enqueue(a->q, tu_msg(a->id, a->accepted));
        if (rc == MPSCQ_OK)
            a->accepted++;
        else {
            ck_assert_int_eq(rc, MPSCQ_FULL);
            a->full++;
        }
    }
    return NULL;
}

START_TEST(test_full_8_producers)
{
    const size_t cap = 1000;
    mpscq_config c;
    mpscq_config_init(&c);
    c.capacity = cap;
    c.segment_slots = 16;
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    pthread_t th[8];
    struct fill_arg a[8];
    struct tu_barrier start;
    tu_barrier_init(&start, 8);
    for (unsigned p = 0; p < 8; p++) {
        a[p] = (struct fill_arg){ q, p, &start, 0, 0 };
        ck_assert_int_eq(pthread_create(&th[p], NULL, filler, &a[p]), 0);
    }
    uint64_t acc = 0, full = 0, expected[8];
    for (unsigned p = 0; p < 8; p++) {
        pthread_join(th[p], NULL);
        acc += a[p].accepted;
        full += a[p].full;
        expected[p] = a[p].accepted;
    }
    ck_assert_uint_eq(acc, cap);
    ck_assert_uint_eq(full, 8000 - cap);
    ck_assert_uint_eq(mpscq_size(q), cap);
    struct mpscq_stats st;
    mpscq_stats(q, &st);
    ck_assert_uint_eq(st.full_rejections, 8000 - cap);
    /* Full now for everyone. */
    ck_assert_int_eq(mpscq_enqueue(q, NULL), MPSCQ_FULL);
    tu_drain_verify(q, 8, expected);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* close() racing with producers: every message accepted before the close
 * is delivered, none after, and the consumer ends on MPSCQ_CLOSED. */
struct close_arg {
    mpscq_t *q;
    unsigned id;
    uint64_t accepted;
};

static void *until_closed(void *p)
{
    struct close_arg *a = p;
    for (;;) {
        int rc = mpscq_enqueue(a->q, tu_msg(a->id, a->accepted));
        if (rc == MPSCQ_CLOSED)
            return NULL;
        if (rc == MPSCQ_FULL) {
            sched_yield();
            continue;
        }
        ck_assert_int_eq(rc, MPSCQ_OK);
        a->accepted++;
    }
}

START_TEST(test_close_race)
{
    mpscq_config c;
    mpscq_config_init(&c);
    c.segment_slots = 8;
    c.capacity = 256; /* keeps the backlog at close small */
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    pthread_t th[4];
    struct close_arg a[4];
    for (unsigned p = 0; p < 4; p++) {
        a[p] = (struct close_arg){ q, p, 0 };
        ck_assert_int_eq(pthread_create(&th[p], NULL, until_closed, &a[p]), 0);
    }
    uint64_t next[4] = { 0 }, got = 0;
    void *m;
    int rc;
    /* Consume a while, then close from the consumer thread. */
    while (got < tu_scaled(20000, 200)) {
        if (mpscq_dequeue(q, &m) == MPSCQ_OK) {
            ck_assert_uint_eq(tu_seq(m), next[tu_producer(m)]);
            next[tu_producer(m)]++;
            got++;
        }
    }
    mpscq_close(q);
    while ((rc = mpscq_dequeue_wait(q, &m, -1)) == MPSCQ_OK) {
        ck_assert_uint_eq(tu_seq(m), next[tu_producer(m)]);
        next[tu_producer(m)]++;
    }
    ck_assert_int_eq(rc, MPSCQ_CLOSED);
    for (unsigned p = 0; p < 4; p++) {
        pthread_join(th[p], NULL);
        ck_assert_uint_eq(next[p], a[p].accepted);
    }
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* A thread that exits hands its record back; many short-lived producer
 * threads reuse records instead of growing the list. */
static void *one_shot(void *p)
{
    struct prod_arg *a = p;
    for (uint64_t i = 0; i < a->count; i++)
        ck_assert_int_eq(mpscq_enqueue(a->q, tu_msg(a->id, i)), MPSCQ_OK);
    return NULL;
}

START_TEST(test_thread_churn)
{
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, NULL), MPSCQ_OK);
    uint64_t total = 0;
    for (unsigned round = 0; round < 200; round++) {
        pthread_t th[2];
        struct prod_arg a[2];
        for (unsigned p = 0; p < 2; p++) {
            a[p] = (struct prod_arg){ q, p, 50, 1, NULL };
            ck_assert_int_eq(pthread_create(&th[p], NULL, one_shot, &a[p]), 0);
        }
        for (unsigned p = 0; p < 2; p++)
            pthread_join(th[p], NULL);
        uint64_t expected[2] = { 50, 50 };
        total += tu_drain_verify(q, 2, expected);
    }
    ck_assert_uint_eq(total, 200 * 100);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("concurrent");
    TCase *tc = tcase_create("mpsc");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_delivery, 0, (int)(sizeof shapes / sizeof shapes[0]));
    tcase_add_test(tc, test_batch_contiguous);
    tcase_add_test(tc, test_realtime_order);
    tcase_add_test(tc, test_full_8_producers);
    tcase_add_test(tc, test_close_race);
    tcase_add_test(tc, test_thread_churn);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run("concurrent", suite());
}
