/* testutil.c - helpers shared by the Check suites. */
#include "config.h"

#include <check.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "testutil.h"
#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

long tu_rss_kib(void)
{
    long pages = 0, resident = -1;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

int tu_under_valgrind(void)
{
    return RUNNING_ON_VALGRIND != 0;
}

size_t tu_scaled(size_t n, size_t min)
{
    const char *s = getenv("MPSCQ_STRESS_SCALE");
    /* Valgrind runs threads one at a time, 20-100x slower: 5 % there. */
    long pct = s ? strtol(s, NULL, 10) : RUNNING_ON_VALGRIND ? 5 : 100;
    if (pct <= 0)
        pct = 100;
    size_t r = (size_t)((double)n * (double)pct / 100.0);
    return r < min ? min : r;
}

void tu_alloc_init(struct tu_alloc *a)
{
    atomic_init(&a->outstanding, 0);
    atomic_init(&a->peak, 0);
    atomic_init(&a->calls, 0);
    atomic_init(&a->fail_at, 0);
    atomic_init(&a->fail_from, 0);
}

static void *tu_alloc_fn(size_t size, void *arg)
{
    struct tu_alloc *a = arg;
    long n = atomic_fetch_add(&a->calls, 1) + 1;
    long at = atomic_load(&a->fail_at), from = atomic_load(&a->fail_from);
    if ((at && n == at) || (from && n >= from))
        return NULL;
    void *p = NULL;
    if (posix_memalign(&p, 64, size) != 0)
        return NULL;
    long long now = atomic_fetch_add(&a->outstanding, (long long)size) + (long long)size;
    long long pk = atomic_load(&a->peak);
    while (now > pk && !atomic_compare_exchange_weak(&a->peak, &pk, now))
        ;
    return p;
}

static void tu_free_fn(void *p, size_t size, void *arg)
{
    struct tu_alloc *a = arg;
    atomic_fetch_sub(&a->outstanding, (long long)size);
    free(p);
}

void tu_config_alloc(mpscq_config *cfg, struct tu_alloc *a)
{
    cfg->alloc_fn = tu_alloc_fn;
    cfg->free_fn = tu_free_fn;
    cfg->alloc_arg = a;
}

static void tu_log_fn(int level, const char *msg, void *arg)
{
    struct tu_log *l = arg;
    l->last_level = level;
    snprintf(l->last, sizeof l->last, "%s", msg);
    atomic_fetch_add(&l->count, 1);
}

void tu_config_log(mpscq_config *cfg, struct tu_log *l)
{
    memset(l, 0, sizeof *l);
    cfg->log_fn = tu_log_fn;
    cfg->log_arg = l;
}

void tu_barrier_init(struct tu_barrier *b, int total)
{
    atomic_init(&b->waiting, 0);
    b->total = total;
}

void tu_barrier_wait(struct tu_barrier *b)
{
    atomic_fetch_add(&b->waiting, 1);
    while (atomic_load(&b->waiting) < b->total)
        sched_yield();
}

size_t tu_drain_verify(mpscq_t *q, unsigned producers, const uint64_t *expected)
{
    uint64_t total = 0;
    uint64_t *next = calloc(producers, sizeof *next);
    ck_assert_ptr_nonnull(next);
    for (unsigned p = 0; p < producers; p++)
        total += expected[p];
    size_t got = 0;
    while (got < total) {
        void *m;
        int rc = mpscq_dequeue(q, &m);
        if (rc == MPSCQ_EMPTY) {
            sched_yield();
            continue;
        }
        ck_assert_int_eq(rc, MPSCQ_OK);
        unsigned p = tu_producer(m);
        ck_assert_uint_lt(p, producers);
        /* Per-producer FIFO; also rules out duplicates and loss, since
         * every producer's sequence must be 0, 1, 2, ... exactly. */
        ck_assert_msg(tu_seq(m) == next[p],
                      "producer %u: got seq %llu, expected %llu", p,
                      (unsigned long long)tu_seq(m), (unsigned long long)next[p]);
        next[p]++;
        got++;
    }
    for (unsigned p = 0; p < producers; p++)
        ck_assert_uint_eq(next[p], expected[p]);
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    free(next);
    return got;
}

void tu_idle(mpscq_t *q)
{
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
}

long long tu_backlog(mpscq_t *q, struct tu_alloc *a, uintptr_t n)
{
    void *m;
    for (uintptr_t i = 0; i < n; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
    long long peak = atomic_load(&a->outstanding);
    for (uintptr_t i = 0; i < n; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_uint_eq((uintptr_t)m, i);
    }
    return peak;
}

int tu_run(const char *name, Suite *s)
{
    SRunner *sr = srunner_create(s);
    /* Under Valgrind, run the tests in this process (no fork): Valgrind
     * then reports on the tests themselves, and Check's per-test
     * timeouts, sized for native speed, do not apply. */
    if (RUNNING_ON_VALGRIND)
        srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int run = srunner_ntests_run(sr);
    int failed = srunner_ntests_failed(sr);
    int errors = 0;
    TestResult **res = srunner_results(sr);
    for (int i = 0; i < run; i++)
        if (tr_rtype(res[i]) == CK_ERROR)
            errors++;
    free(res);
    if (fcntl(9, F_GETFD) != -1)
        dprintf(9, "Running suite(s): %s\n%d%%: Checks: %d, Failures: %d, Errors: %d\n",
                name, run ? 100 * (run - failed) / run : 0, run,
                failed - errors, errors);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
