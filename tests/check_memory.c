/* check_memory.c - allocation failure, memory return, pool ABA, destroy. */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testutil.h"
/* White-box access for the pool test (the library is linked statically). */
#include "internal.h"
#include "segment.h"
#include "hazard.h"
#include "arch.h"

static mpscq_t *make_counted(struct tu_alloc *a, size_t slots, size_t cap)
{
    mpscq_config c;
    mpscq_config_init(&c);
    c.segment_slots = slots;
    c.capacity = cap;
    tu_config_alloc(&c, a);
    mpscq_t *q = NULL;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    return q;
}

START_TEST(test_create_nomem)
{
    /* Fail the 1st allocation (the queue), then the 2nd (first segment). */
    for (long k = 1; k <= 2; k++) {
        struct tu_alloc a;
        tu_alloc_init(&a);
        atomic_store(&a.fail_at, k);
        mpscq_config c;
        mpscq_config_init(&c);
        tu_config_alloc(&c, &a);
        mpscq_t *q = (mpscq_t *)0x1;
        ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_NOMEM);
        ck_assert_ptr_eq(q, (mpscq_t *)0x1);
        ck_assert_int_eq(atomic_load(&a.outstanding), 0);
    }
}
END_TEST

/* Fail every allocation site in turn while enqueueing single messages and
 * batches through 2-slot segments; each NOMEM must leave nothing behind
 * and the queue must keep working.  At the end, exactly the accepted
 * messages come out, in order. */
START_TEST(test_enqueue_nomem_every_site)
{
    for (long fail = 1; fail <= 60; fail++) {
        struct tu_alloc a;
        tu_alloc_init(&a);
        mpscq_t *q = make_counted(&a, 2, 0);
        long base = atomic_load(&a.calls);
        atomic_store(&a.fail_at, base + fail);
        uintptr_t accepted[400];
        size_t nacc = 0, nomem = 0;
        uintptr_t v = 1;
        for (int op = 0; op < 120; op++) {
            if (op % 3 == 2) {
                void *b[3] = { (void *)v, (void *)(v + 1), (void *)(v + 2) };
                int rc = mpscq_enqueue_batch(q, b, 3);
                if (rc == MPSCQ_OK) {
                    for (int k = 0; k < 3; k++)
                        accepted[nacc++] = v + (uintptr_t)k;
                } else {
                    ck_assert_int_eq(rc, MPSCQ_NOMEM);
                    nomem++;
                }
                v += 3;
            } else {
                int rc = mpscq_enqueue(q, (void *)v);
                if (rc == MPSCQ_OK)
                    accepted[nacc++] = v;
                else {
                    ck_assert_int_eq(rc, MPSCQ_NOMEM);
                    nomem++;
                }
                v++;
            }
            ck_assert_uint_eq(mpscq_size(q), nacc);
        }
        struct mpscq_stats st;
        mpscq_stats(q, &st);
        ck_assert_uint_eq(st.nomem_failures, nomem);
        ck_assert_uint_eq(st.enqueued, nacc);
        if (atomic_load(&a.calls) >= base + fail)
            ck_assert_msg(nomem == 1, "fail=%ld: injected failure not reported", fail);
        for (size_t i = 0; i < nacc; i++) {
            void *m;
            ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
            ck_assert_ptr_eq(m, (void *)accepted[i]);
        }
        void *m;
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_EMPTY);
        mpscq_destroy(q, NULL, NULL);
        ck_assert_int_eq(atomic_load(&a.outstanding), 0);
    }
}
END_TEST

static void *register_and_fail(void *p)
{
    /* A new thread's first enqueue must register a record: it fails. */
    return (void *)(intptr_t)mpscq_enqueue((mpscq_t *)p, (void *)7);
}

START_TEST(test_register_nomem)
{
    struct tu_alloc a;
    tu_alloc_init(&a);
    mpscq_t *q = make_counted(&a, 4, 0);
    atomic_store(&a.fail_from, atomic_load(&a.calls) + 1);
    pthread_t th;
    void *rc;
    ck_assert_int_eq(pthread_create(&th, NULL, register_and_fail, q), 0);
    pthread_join(th, &rc);
    ck_assert_int_eq((int)(intptr_t)rc, MPSCQ_NOMEM);
    ck_assert_uint_eq(mpscq_size(q), 0);
    atomic_store(&a.fail_from, 0);
    ck_assert_int_eq(pthread_create(&th, NULL, register_and_fail, q), 0);
    pthread_join(th, &rc);
    ck_assert_int_eq((int)(intptr_t)rc, MPSCQ_OK);
    void *m;
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    ck_assert_ptr_eq(m, (void *)7);
    mpscq_destroy(q, NULL, NULL);
    ck_assert_int_eq(atomic_load(&a.outstanding), 0);
}
END_TEST

struct flood {
    mpscq_t *q;
    uint64_t n;
    unsigned id;
};

static void *flood_producer(void *p)
{
    struct flood *f = p;
    for (uint64_t i = 0; i < f->n; i++)
        ck_assert_int_eq(mpscq_enqueue(f->q, tu_msg(f->id, i)), MPSCQ_OK);
    return NULL;
}

/* One million messages through (4 producers, consumer concurrently, and
 * bursts that build a backlog): afterwards the bytes held by the queue are
 * back to what they were after warm-up, give or take the bounded pool. */
/* With the default allocator a drained burst goes back to the kernel
 * (segments are mmap'ed), not merely back to malloc: the resident set
 * returns close to where it was.  Counted in pages, not timed.  Not
 * meaningful under Valgrind (its own heap), ASan (segments stay on the
 * malloc heap there, by design) or TSan (shadow memory). */
START_TEST(test_rss_returns_after_burst)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    return; /* ThreadSanitizer's shadow memory counts in the RSS too */
#endif
#endif
    if (tu_under_valgrind() || tu_rss_kib() < 0)
        return;
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, NULL), MPSCQ_OK);
    void *m;
    for (uintptr_t i = 0; i < 8192; i++) /* warm-up: record, pool */
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
    while (mpscq_dequeue(q, &m) == MPSCQ_OK)
        ;
    long before = tu_rss_kib();
    const uintptr_t n = 400000; /* about 4.7 MiB of segments */
    for (uintptr_t i = 0; i < n; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
    long peak = tu_rss_kib();
    for (uintptr_t i = 0; i < n; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)i);
    }
    /* The drain ends when the consumer finds the queue idle: until then
     * the pool may keep drained segments for the producers (design.md
     * s. 5); then it goes back to its idle bound. */
    tu_idle(q);
    long after = tu_rss_kib();
    ck_assert_int_gt(peak - before, 3000);  /* the backlog was resident */
    /* Back within the pool (4 segments of 12 KiB) and a page or two of
     * slack; malloc'ed segments would leave about 4.7 MiB here. */
    ck_assert_int_le(after - before, 256);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* Every page of a segment fresh from mmap is resident as the mmap
 * returns (MAP_POPULATE: one system call instead of a page fault per
 * page, taken later by the producer or the consumer that first writes
 * it; doc/performance.md).  Checked with mincore(2) on the first segment
 * before any slot is written, and on the second when one slot of it is:
 * of its 3 pages only the first (the header and slots 0 to 440) is
 * written yet. */
static void assert_resident(struct mpscq *q, struct mpscq_segment *s)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t pages = q->seg_map_bytes / (size_t)page;
    unsigned char vec[64];
    ck_assert_uint_le(pages, sizeof vec);
    ck_assert_int_eq(mincore(s, q->seg_map_bytes, vec), 0);
    for (size_t i = 0; i < pages; i++)
        ck_assert_msg(vec[i] & 1, "page %zu of %zu of a fresh segment not resident", i, pages);
}

/* 1 when this system maps the pages of a MAP_POPULATE mapping at once
 * (Linux does; an emulator such as qemu-user may not, and then there is
 * nothing of the library's to check). */
static int populate_honoured(void)
{
#ifdef MAP_POPULATE
    long page = sysconf(_SC_PAGESIZE);
    size_t len = 3 * (size_t)page;
    unsigned char vec[3];
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                   -1, 0);
    ck_assert_ptr_ne(p, MAP_FAILED);
    int all = mincore(p, len, vec) == 0 && (vec[0] & vec[1] & vec[2] & 1);
    munmap(p, len);
    return all;
#else
    return 0;
#endif
}

START_TEST(test_fresh_segment_populated)
{
    if (!populate_honoured()) {
        fprintf(stderr, "test_fresh_segment_populated: MAP_POPULATE maps nothing here: skipped\n");
        return;
    }
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, NULL), MPSCQ_OK);
    if (q->seg_map_bytes == 0) {
        /* Segments on the malloc heap (a sanitizer build): nothing mapped. */
        mpscq_destroy(q, NULL, NULL);
        return;
    }
    /* Acquire: the segment's header, as a producer reads the hint. */
    struct mpscq_segment *first = atomic_load_explicit(&q->hint, memory_order_acquire);
    assert_resident(q, first);
    /* Fill the first segment; the next ticket goes to the producer's
     * spare, mapped fresh when it registered (the pool was empty). */
    for (uintptr_t i = 0; i < q->nslots; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(q, (void *)q->nslots), MPSCQ_OK);
    struct mpscq_stats st;
    mpscq_stats(q, &st);
    /* Both from mmap: nothing was recycled, nothing came from a pool. */
    ck_assert_uint_ge(st.segments_allocated, 2);
    ck_assert_uint_eq(st.segments_recycled, 0);
    struct mpscq_segment *second = atomic_load_explicit(&q->hint, memory_order_acquire);
    ck_assert_ptr_ne(second, first);
    assert_resident(q, second);
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

/* The slot layout (internal.h): slot i's value and state in line i / 7
 * of the slot area, value i % 7 and state byte 56 + i % 7 of it, no two
 * slots sharing a byte, every slot of a segment inside it.  Every slot of
 * the largest segment, by the C helpers (the batch paths' walk included);
 * then what the enqueue path of
 * this build (the assembly in an asm build) wrote, read through them. */
START_TEST(test_slot_layout)
{
    size_t n = MPSCQ_SEGMENT_SLOTS_MAX;
    size_t area = mpscq_slot_lines(n) * MPSCQ_CACHELINE;
    ck_assert_uint_eq(area, (n + 6) / 7 * 64);
    struct mpscq_segment *s = aligned_alloc(64, sizeof *s + area);
    ck_assert_ptr_nonnull(s);
    char *base = (char *)(s + 1);
    /* The batch paths' walk (mpscq_cur_next) meets every slot too. */
    struct mpscq_slot_cur w = mpscq_slot_at(s, 0);
    for (size_t i = 0; i < n; i++, mpscq_cur_next(&w)) {
        ck_assert_ptr_eq((void *)mpscq_cur_val(&w), (void *)mpscq_slot_val(s, i));
        ck_assert_ptr_eq((void *)mpscq_cur_state(&w), (void *)mpscq_slot_state(s, i));
        struct mpscq_slot_cur d = mpscq_slot_at(s, i);
        ck_assert_ptr_eq((void *)mpscq_cur_val(&d), (void *)mpscq_slot_val(s, i));
        size_t v = (size_t)((char *)mpscq_slot_val(s, i) - base);
        size_t t = (size_t)((char *)(void *)mpscq_slot_state(s, i) - base);
        ck_assert_uint_eq(mpscq_slot_line(i), i / 7);
        ck_assert_uint_eq(v, i / 7 * 64 + i % 7 * 8);
        ck_assert_uint_eq(t, i / 7 * 64 + 56 + i % 7);
        ck_assert_ptr_eq((void *)mpscq_line_states(s, i / 7), (void *)(base + i / 7 * 64 + 56));
        /* Inside the area of the smallest segment size that has slot i. */
        size_t m = MPSCQ_SEGMENT_SLOTS_MIN;
        while (m <= i)
            m <<= 1;
        ck_assert_uint_lt(t, mpscq_slot_lines(m) * MPSCQ_CACHELINE);
    }
    free(s);

    mpscq_config c;
    mpscq_config_init(&c);
    c.segment_slots = 32;
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    ck_assert_uint_eq(q->seg_bytes, sizeof(struct mpscq_segment) + 5 * 64);
    /* Acquire: the segment's header, as a producer reads the hint. */
    struct mpscq_segment *seg = atomic_load_explicit(&q->hint, memory_order_acquire);
    for (uintptr_t i = 0; i < 32; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)(i + 100)), MPSCQ_OK);
    for (size_t i = 0; i < 32; i++) {
        ck_assert_ptr_eq(*mpscq_slot_val(seg, i), (void *)(i + 100));
        /* Relaxed: this thread wrote it. */
        unsigned st = atomic_load_explicit(mpscq_slot_state(seg, i), memory_order_relaxed);
        ck_assert_uint_eq(st, MPSCQ_SLOT_READY);
    }
    /* The spare byte of each line and the tail of the last line: never
     * written. */
    for (size_t l = 0; l < 5; l++)
        ck_assert_uint_eq(((unsigned char *)(void *)mpscq_line_states(seg, l))[7], 0);
    for (size_t i = 32; i < 35; i++) {
        unsigned st = atomic_load_explicit(mpscq_slot_state(seg, i), memory_order_relaxed);
        ck_assert_uint_eq(st, 0);
    }
    void *m;
    for (uintptr_t i = 0; i < 32; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, (void *)(i + 100));
    }
    mpscq_destroy(q, NULL, NULL);
}
END_TEST

START_TEST(test_heap_returns_to_baseline)
{
    struct tu_alloc a;
    tu_alloc_init(&a);
    mpscq_t *q = make_counted(&a, 256, 0);
    /* Warm-up: register this thread and cycle a few segments. */
    for (uintptr_t i = 0; i < 2048; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
    void *m;
    while (mpscq_dequeue(q, &m) == MPSCQ_OK)
        ;
    long long baseline = atomic_load(&a.outstanding);
    size_t seg = ((struct mpscq *)q)->seg_bytes;

    const unsigned P = 4;
    uint64_t per = tu_scaled(1000000, 40000) / P;
    for (int burst = 0; burst < 2; burst++) {
        pthread_t th[4];
        struct flood f[4];
        for (unsigned p = 0; p < P; p++) {
            f[p] = (struct flood){ q, per / 2, p };
            ck_assert_int_eq(pthread_create(&th[p], NULL, flood_producer, &f[p]), 0);
        }
        if (burst == 1) /* the second burst piles up before draining */
            for (unsigned p = 0; p < P; p++)
                pthread_join(th[p], NULL);
        uint64_t expected[4] = { per / 2, per / 2, per / 2, per / 2 };
        tu_drain_verify(q, P, expected);
        if (burst == 0)
            for (unsigned p = 0; p < P; p++)
                pthread_join(th[p], NULL);
    }
    tu_idle(q);
    long long peak = atomic_load(&a.peak);
    long long after = atomic_load(&a.outstanding);
    /* The backlog really did cost memory ... */
    ck_assert_int_gt(peak, baseline + 16 * (long long)seg);
    /* ... and it all came back: drained segments and the spares of the 4
     * exited producer threads went to the pool, which the idle consumer
     * trimmed to its idle bound. */
    ck_assert_int_le(after, baseline + (long long)MPSCQ_POOL_MAX * (long long)seg);
    struct mpscq_stats st;
    mpscq_stats(q, &st);
    ck_assert_uint_gt(st.segments_freed, 0);
    mpscq_destroy(q, NULL, NULL);
    ck_assert_int_eq(atomic_load(&a.outstanding), 0);
}
END_TEST

/* The pool keeps drained segments while messages flow (below its
 * caught-up bound an empty dequeue frees none), so that producers stalled behind a stopped one do not send every
 * segment to free_fn and its successor to alloc_fn; it goes back to
 * MPSCQ_POOL_MAX only when the consumer finds the queue idle: two empty
 * dequeues with no ticket issued in between (design.md s. 5). */
START_TEST(test_pool_kept_while_busy_trimmed_when_idle)
{
    struct tu_alloc a;
    tu_alloc_init(&a);
    mpscq_t *qq = make_counted(&a, 4, 0);
    struct mpscq *q = (struct mpscq *)qq;
    ck_assert_int_ge(q->pool_high, 100);
    void *m;
    for (uintptr_t i = 0; i < 400; i++) /* 100 segments */
        ck_assert_int_eq(mpscq_enqueue(qq, (void *)i), MPSCQ_OK);
    for (uintptr_t i = 0; i < 400; i++)
        ck_assert_int_eq(mpscq_dequeue(qq, &m), MPSCQ_OK);
    long busy = atomic_load(&q->pool_count);
    ck_assert_int_gt(busy, 90); /* drained segments kept for reuse */
    ck_assert_int_eq(mpscq_dequeue(qq, &m), MPSCQ_EMPTY);
    ck_assert_int_eq(atomic_load(&q->pool_count), busy); /* caught up, not idle */
    /* An enqueue between two empty polls: still not idle. */
    ck_assert_int_eq(mpscq_enqueue(qq, NULL), MPSCQ_OK);
    ck_assert_int_eq(mpscq_dequeue(qq, &m), MPSCQ_OK);
    ck_assert_int_eq(mpscq_dequeue(qq, &m), MPSCQ_EMPTY);
    ck_assert_int_ge(atomic_load(&q->pool_count), busy - 1);
    /* Idle: back to the bound, and the memory with it. */
    long long before = atomic_load(&a.outstanding);
    ck_assert_int_eq(mpscq_dequeue(qq, &m), MPSCQ_EMPTY);
    ck_assert_int_le(atomic_load(&q->pool_count), MPSCQ_POOL_MAX);
    ck_assert_int_le(atomic_load(&a.outstanding),
                     before - (busy - 1 - MPSCQ_POOL_MAX) * (long long)q->seg_bytes);
    mpscq_destroy(qq, NULL, NULL);
    ck_assert_int_eq(atomic_load(&a.outstanding), 0);
}
END_TEST

/* A backlog drained past the pool's caught-up bound: every recycled
 * segment goes to the pool, none to free_fn, while the consumer works
 * through it (a free there is a system call and a TLB shootdown that every
 * message behind it waits for).  Each empty dequeue that finds the queue
 * caught up but not idle frees MPSCQ_POOL_EASE of the excess, down to the
 * caught-up bound; idle, the pool goes back to its idle bound (design.md s. 5). */
START_TEST(test_pool_takes_backlog_eases_when_caught_up)
{
    struct tu_alloc a;
    tu_alloc_init(&a);
    mpscq_t *qq = make_counted(&a, 4, 0);
    struct mpscq *q = (struct mpscq *)qq;
    long high = q->pool_high;
    ck_assert_int_ge(high, 100);
    void *m;
    long long peak = tu_backlog(qq, &a, (uintptr_t)(high + 3 * MPSCQ_POOL_EASE + 5) * 4);
    /* Nothing freed during the drain: it all went to the pool. */
    ck_assert_int_eq(atomic_load(&a.outstanding), peak);
    long full = atomic_load(&q->pool_count);
    ck_assert_int_gt(full, high + 3 * MPSCQ_POOL_EASE);
    /* Caught up, not idle: MPSCQ_POOL_EASE segments a call. */
    long pool = full, freed = 0, calls = 0;
    while (pool > high) {
        ck_assert_int_eq(mpscq_dequeue(qq, &m), MPSCQ_EMPTY);
        long step = pool - high < MPSCQ_POOL_EASE ? pool - high : MPSCQ_POOL_EASE;
        freed += step;
        calls++;
        ck_assert_int_eq(atomic_load(&q->pool_count), pool - step);
        ck_assert_int_eq(atomic_load(&a.outstanding), peak - freed * (long long)q->seg_bytes);
        /* A message between two empty dequeues: still not idle.  (Its
         * segment may take a spare from the pool and give one back.) */
        ck_assert_int_eq(mpscq_enqueue(qq, NULL), MPSCQ_OK);
        ck_assert_int_eq(mpscq_dequeue(qq, &m), MPSCQ_OK);
        pool = atomic_load(&q->pool_count);
    }
    ck_assert_int_ge(calls, 3);
    ck_assert_int_eq(mpscq_dequeue(qq, &m), MPSCQ_EMPTY);
    ck_assert_int_le(atomic_load(&q->pool_count), high);
    /* Idle: the idle bound. */
    ck_assert_int_eq(mpscq_dequeue(qq, &m), MPSCQ_EMPTY);
    ck_assert_int_le(atomic_load(&q->pool_count), MPSCQ_POOL_MAX);
    mpscq_destroy(qq, NULL, NULL);
    ck_assert_int_eq(atomic_load(&a.outstanding), 0);
}
END_TEST

/* The pool takes a drained backlog only up to its working bound
 * (MPSCQ_POOL_WORK_BYTES of segments, 8192 at most): beyond that the
 * consumer frees as it recycles, so a backlog of any size holds at most
 * that much memory once drained. */
START_TEST(test_pool_backlog_capped)
{
    struct tu_alloc a;
    tu_alloc_init(&a);
    mpscq_t *qq = make_counted(&a, 4, 0);
    struct mpscq *q = (struct mpscq *)qq;
    long cap = q->pool_work;
    ck_assert_int_gt(cap, q->pool_high);
    void *m;
    long long peak = tu_backlog(qq, &a, (uintptr_t)(cap + 50) * 4);
    /* Full to the cap (the drain pops nothing, so the pool only grew),
     * and the ~50 segments beyond it freed. */
    ck_assert_int_eq(atomic_load(&q->pool_count), cap);
    ck_assert_int_le(atomic_load(&a.outstanding), peak - 40 * (long long)q->seg_bytes);
    /* Then as below the cap: eased when caught up, trimmed when idle. */
    ck_assert_int_eq(mpscq_dequeue(qq, &m), MPSCQ_EMPTY);
    ck_assert_int_eq(atomic_load(&q->pool_count), cap - MPSCQ_POOL_EASE);
    ck_assert_int_eq(mpscq_dequeue(qq, &m), MPSCQ_EMPTY);
    ck_assert_int_le(atomic_load(&q->pool_count), MPSCQ_POOL_MAX);
    mpscq_destroy(qq, NULL, NULL);
    ck_assert_int_eq(atomic_load(&a.outstanding), 0);
}
END_TEST

/* The pool's (pointer, tag) head defeats ABA: a popper that read (A, t)
 * and A->next == B is delayed; meanwhile A and B are popped and A is
 * pushed back.  The head's pointer is A again, so a pointer-only CAS would
 * succeed and install B, a segment that is in use.  The 16-byte CAS fails
 * because the tag moved. */
START_TEST(test_pool_aba)
{
    struct tu_alloc a;
    tu_alloc_init(&a);
    mpscq_t *qq = make_counted(&a, 4, 0);
    struct mpscq *q = (struct mpscq *)qq;
    struct mpscq_hp_rec rec;
    memset(&rec, 0, sizeof rec);
    atomic_init(&rec.hp, NULL);

    struct mpscq_segment *sa = mpscq_seg_get(q, &rec, NULL);
    struct mpscq_segment *sb = mpscq_seg_get(q, &rec, NULL);
    ck_assert_ptr_nonnull(sa);
    ck_assert_ptr_nonnull(sb);
    mpscq_seg_put(q, sb);
    mpscq_seg_put(q, sa); /* pool: A -> B */

    /* The delayed popper's snapshot. */
    uint64_t stale[2];
    stale[0] = (uint64_t)(uintptr_t)atomic_load(&q->pool.ptr);
    stale[1] = atomic_load(&q->pool.tag);
    struct mpscq_segment *stale_next = atomic_load(&sa->pool_next);
    ck_assert_ptr_eq((void *)(uintptr_t)stale[0], sa);
    ck_assert_ptr_eq(stale_next, sb);

    /* Others: pop A, pop B, push A back. */
    struct mpscq_segment *x = mpscq_seg_get(q, &rec, NULL);
    struct mpscq_segment *y = mpscq_seg_get(q, &rec, NULL);
    ck_assert_ptr_eq(x, sa);
    ck_assert_ptr_eq(y, sb);
    mpscq_seg_put(q, sa);
    ck_assert_ptr_eq(atomic_load(&q->pool.ptr), sa); /* pointer matches: ABA */

    uint64_t desired[2] = { (uint64_t)(uintptr_t)stale_next, stale[1] + 1 };
    uint64_t expect[2] = { stale[0], stale[1] };
    ck_assert_int_eq(mpscq_arch_cas16(&q->pool, expect, desired), 0);
    /* The failed CAS reported the current value. */
    ck_assert_ptr_eq((void *)(uintptr_t)expect[0], sa);
    ck_assert_uint_ne(expect[1], stale[1]);
    /* The pool still holds exactly A, and B (in use) is not in it. */
    ck_assert_ptr_eq(atomic_load(&q->pool.ptr), sa);
    ck_assert_ptr_null(atomic_load(&sa->pool_next));
    ck_assert_uint_eq(atomic_load(&q->pool_count), 1);

    mpscq_seg_free(q, sb);
    mpscq_destroy(qq, NULL, NULL);
    ck_assert_int_eq(atomic_load(&a.outstanding), 0);
}
END_TEST

START_TEST(test_cas16_semantics)
{
    _Alignas(16) uint64_t word[2] = { 1, 2 };
    uint64_t e[2] = { 1, 2 }, d[2] = { 3, 4 };
    ck_assert_int_eq(mpscq_arch_cas16(word, e, d), 1);
    ck_assert_uint_eq(word[0], 3);
    ck_assert_uint_eq(word[1], 4);
    uint64_t e2[2] = { 3, 5 }; /* high half differs */
    ck_assert_int_eq(mpscq_arch_cas16(word, e2, d), 0);
    ck_assert_uint_eq(e2[0], 3);
    ck_assert_uint_eq(e2[1], 4);
    uint64_t e3[2] = { 9, 4 }; /* low half differs */
    ck_assert_int_eq(mpscq_arch_cas16(word, e3, d), 0);
    ck_assert_uint_eq(e3[0], 3);
}
END_TEST

static void count_drop(void *msg, void *arg)
{
    (void)msg;
    (*(size_t *)arg)++;
}

START_TEST(test_destroy_frees_everything)
{
    struct tu_alloc a;
    tu_alloc_init(&a);
    mpscq_t *q = make_counted(&a, 4, 0);
    void *b[10] = { 0 };
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)(uintptr_t)i), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue_batch(q, b, 10), MPSCQ_OK);
    void *m;
    for (int i = 0; i < 30; i++)
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    size_t dropped = 0;
    mpscq_destroy(q, count_drop, &dropped);
    ck_assert_uint_eq(dropped, 80);
    ck_assert_int_eq(atomic_load(&a.outstanding), 0);
}
END_TEST

/* A batch that fails keeps nothing: no spare segment beyond the one a
 * record always keeps, no place.  It used to keep what it had allocated
 * (4000 segments for a NOMEM, 1562 for a FULL), so that another thread's
 * small batch failed. */
START_TEST(test_failed_batch_gives_back)
{
    struct tu_alloc a;
    tu_alloc_init(&a);
    mpscq_t *q = make_counted(&a, 2, 0);
    void *one[1] = { tu_msg(0, 0) };
    void *m;
    ck_assert_int_eq(mpscq_enqueue(q, one[0]), MPSCQ_OK);
    ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    long long base = atomic_load(&a.outstanding);
    /* NOMEM part-way: 200 segments granted, then the allocator fails.  The
     * batch needs n / 2 + 1 segments; msgs is never read on failure. */
    atomic_store(&a.fail_from, atomic_load(&a.calls) + 201);
    ck_assert_int_eq(mpscq_enqueue_batch(q, one, (size_t)1 << 40), MPSCQ_NOMEM);
    ck_assert_int_ge(atomic_load(&a.peak), base + 200 * (long long)((struct mpscq *)q)->seg_bytes);
    ck_assert_int_eq(atomic_load(&a.outstanding), base);
    struct mpscq_stats st;
    mpscq_stats(q, &st);
    ck_assert_uint_eq(st.nomem_failures, 1);
    ck_assert_uint_eq(mpscq_size(q), 0);
    /* A small batch that fits into what is left works. */
    atomic_store(&a.fail_from, 0);
    void *b4[4] = { tu_msg(1, 0), tu_msg(1, 1), tu_msg(1, 2), tu_msg(1, 3) };
    ck_assert_int_eq(mpscq_enqueue_batch(q, b4, 4), MPSCQ_OK);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
        ck_assert_ptr_eq(m, b4[i]);
    }
    /* CLOSED: decided before anything is allocated. */
    mpscq_close(q);
    long calls = atomic_load(&a.calls);
    void *b64[64] = { 0 };
    ck_assert_int_eq(mpscq_enqueue_batch(q, b64, 64), MPSCQ_CLOSED);
    ck_assert_int_eq(atomic_load(&a.calls), calls);
    mpscq_destroy(q, NULL, NULL);
    ck_assert_int_eq(atomic_load(&a.outstanding), 0);

    /* FULL: decided before anything is allocated, and no place is kept. */
    tu_alloc_init(&a);
    q = make_counted(&a, 2, 16);
    for (uintptr_t i = 0; i < 12; i++)
        ck_assert_int_eq(mpscq_enqueue(q, (void *)i), MPSCQ_OK);
    calls = atomic_load(&a.calls);
    ck_assert_int_eq(mpscq_enqueue_batch(q, b64, 8), MPSCQ_FULL);
    ck_assert_int_eq(atomic_load(&a.calls), calls);
    ck_assert_int_eq(mpscq_enqueue_batch(q, b64, 4), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(q, NULL), MPSCQ_FULL);
    /* NOMEM in a bounded queue gives the places back. */
    for (int i = 0; i < 16; i++)
        ck_assert_int_eq(mpscq_dequeue(q, &m), MPSCQ_OK);
    base = atomic_load(&a.outstanding);
    atomic_store(&a.fail_from, atomic_load(&a.calls) + 1);
    ck_assert_int_eq(mpscq_enqueue_batch(q, b64, 16), MPSCQ_NOMEM);
    ck_assert_int_eq(atomic_load(&a.outstanding), base);
    atomic_store(&a.fail_from, 0);
    ck_assert_int_eq(mpscq_enqueue_batch(q, b64, 16), MPSCQ_OK);
    mpscq_destroy(q, NULL, NULL);
    ck_assert_int_eq(atomic_load(&a.outstanding), 0);
}
END_TEST

/* An allocator that returns memory 8 bytes off 16-byte alignment, for
 * requests of one size (0: every size). */
static _Atomic size_t misalign_size;
static void *misaligned_alloc(size_t size, void *arg)
{
    (void)arg;
    char *p = NULL;
    if (posix_memalign((void **)&p, 64, size + 64) != 0)
        return NULL;
    size_t only = atomic_load(&misalign_size);
    return (only == 0 || only == size) ? p + 8 : p;
}
static void misaligned_free(void *p, size_t size, void *arg)
{
    (void)arg;
    size_t only = atomic_load(&misalign_size);
    free((only == 0 || only == size) ? (char *)p - 8 : p);
}

START_TEST(test_misaligned_allocator_refused)
{
    /* CMPXCHG16B faults on memory that is not 16-byte aligned: a custom
     * allocator that breaks the documented alignment gets an error. */
    mpscq_config c;
    mpscq_config_init(&c);
    c.alloc_fn = misaligned_alloc;
    c.free_fn = misaligned_free;
    struct tu_log l;
    tu_config_log(&c, &l);
    mpscq_t *q = (mpscq_t *)0x1;
    atomic_store(&misalign_size, 0);
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_INVAL);
    ck_assert_ptr_eq(q, (mpscq_t *)0x1);
    /* Only the segments misaligned: the first one fails create. */
    c.segment_slots = 4; /* 64 + one line of slots: 128 bytes */
    atomic_store(&misalign_size, 128);
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_NOMEM);
    /* Only the hazard records misaligned: the first enqueue fails. */
    atomic_store(&misalign_size, sizeof(struct mpscq_hp_rec));
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    ck_assert_int_eq(mpscq_enqueue(q, NULL), MPSCQ_NOMEM);
    ck_assert_uint_eq(mpscq_size(q), 0);
    ck_assert_int_ge(atomic_load(&l.count), 1);
    mpscq_destroy(q, NULL, NULL);
    atomic_store(&misalign_size, 0);
}
END_TEST

/* Preallocation: after mpscq_create and mpscq_producer_create, a million
 * messages from 8 handles (single enqueues and batches, through FULL)
 * and their dequeues never call alloc_fn, nor does going idle free
 * what was preallocated; destroy returns all of it. */
enum { PRE_PRODUCERS = 8 };
struct pre_prod {
    mpscq_producer_t *h;
    unsigned id;
    uint64_t n;
};

static void *pre_producer(void *arg)
{
    struct pre_prod *a = arg;
    uint64_t i = 0;
    while (i < a->n) {
        int rc;
        if (a->id & 1 && a->n - i >= 3) {
            void *b[3] = { tu_msg(a->id, i), tu_msg(a->id, i + 1), tu_msg(a->id, i + 2) };
            rc = mpscq_producer_enqueue_batch(a->h, b, 3);
            if (rc == MPSCQ_OK)
                i += 3;
        } else {
            rc = mpscq_producer_enqueue(a->h, tu_msg(a->id, i));
            if (rc == MPSCQ_OK)
                i++;
        }
        if (rc == MPSCQ_FULL)
            sched_yield();
        else
            ck_assert_int_eq(rc, MPSCQ_OK);
    }
    return NULL;
}

START_TEST(test_preallocate_no_alloc)
{
    static const size_t caps[] = { 64, 4096, 1000 };
    static const size_t slots[] = { 16, 0, 64 };
    struct tu_alloc a;
    tu_alloc_init(&a);
    mpscq_config c;
    mpscq_config_init(&c);
    c.capacity = caps[_i];
    c.segment_slots = slots[_i];
    c.preallocate = 1;
    tu_config_alloc(&c, &a);
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    mpscq_producer_t *h[PRE_PRODUCERS];
    for (unsigned i = 0; i < PRE_PRODUCERS; i++)
        ck_assert_int_eq(mpscq_producer_create(q, &h[i]), MPSCQ_OK);
    long calls = atomic_load(&a.calls);
    long long bytes = atomic_load(&a.outstanding);
    struct mpscq_stats st0, st1;
    mpscq_stats(q, &st0);

    /* A million messages in the first configuration, fewer in the others. */
    uint64_t per = tu_scaled(_i == 0 ? 1000000 : 250000, 40000) / PRE_PRODUCERS;
    struct pre_prod p[PRE_PRODUCERS];
    pthread_t t[PRE_PRODUCERS];
    uint64_t expected[PRE_PRODUCERS];
    for (unsigned i = 0; i < PRE_PRODUCERS; i++) {
        p[i] = (struct pre_prod){ h[i], i, per };
        expected[i] = per;
        ck_assert_int_eq(pthread_create(&t[i], NULL, pre_producer, &p[i]), 0);
    }
    ck_assert_uint_eq(tu_drain_verify(q, PRE_PRODUCERS, expected), PRE_PRODUCERS * per);
    for (unsigned i = 0; i < PRE_PRODUCERS; i++)
        pthread_join(t[i], NULL);
    tu_idle(q);
    ck_assert_int_eq(atomic_load(&a.calls), calls);
    ck_assert_int_eq(atomic_load(&a.outstanding), bytes);
    mpscq_stats(q, &st1);
    ck_assert_uint_eq(st1.segments_allocated, st0.segments_allocated);
    ck_assert_uint_eq(st1.segments_freed, 0);
    ck_assert_uint_eq(st1.nomem_failures, 0);
    for (unsigned i = 0; i < PRE_PRODUCERS; i++)
        mpscq_producer_destroy(h[i]);
    mpscq_destroy(q, NULL, NULL);
    ck_assert_int_eq(atomic_load(&a.outstanding), 0);
}
END_TEST

START_TEST(test_preallocate_errors)
{
    struct tu_alloc a;
    tu_alloc_init(&a);
    mpscq_config c;
    mpscq_config_init(&c);
    c.preallocate = 1;
    tu_config_alloc(&c, &a);
    mpscq_t *q = (mpscq_t *)0x1;
    /* Unbounded: nothing to size the allocation by. */
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_INVAL);
    ck_assert_ptr_eq(q, (mpscq_t *)0x1);
    ck_assert_int_eq(atomic_load(&a.calls), 0);
    /* Every allocation of a preallocating create failing in turn: NOMEM,
     * nothing kept.  capacity 40 in 8-slot segments: 14 segments. */
    c.capacity = 40;
    c.segment_slots = 8;
    tu_alloc_init(&a);
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    long need = atomic_load(&a.calls);
    ck_assert_int_ge(need, 2 + 14 + 1);
    mpscq_destroy(q, NULL, NULL);
    ck_assert_int_eq(atomic_load(&a.outstanding), 0);
    for (long k = 1; k <= need; k++) {
        tu_alloc_init(&a);
        atomic_store(&a.fail_at, k);
        q = (mpscq_t *)0x1;
        ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_NOMEM);
        ck_assert_ptr_eq(q, (mpscq_t *)0x1);
        ck_assert_int_eq(atomic_load(&a.outstanding), 0);
    }
    /* A handle's create that cannot get its segment: NOMEM, nothing kept. */
    tu_alloc_init(&a);
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    long long before = atomic_load(&a.outstanding);
    atomic_store(&a.fail_from, atomic_load(&a.calls) + 1);
    mpscq_producer_t *h = (mpscq_producer_t *)0x1;
    ck_assert_int_eq(mpscq_producer_create(q, &h), MPSCQ_NOMEM);
    ck_assert_ptr_eq(h, (mpscq_producer_t *)0x1);
    ck_assert_int_eq(atomic_load(&a.outstanding), before);
    atomic_store(&a.fail_from, 0);
    mpscq_destroy(q, NULL, NULL);
    ck_assert_int_eq(atomic_load(&a.outstanding), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("memory");
    TCase *tc = tcase_create("memory");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_create_nomem);
    tcase_add_test(tc, test_enqueue_nomem_every_site);
    tcase_add_test(tc, test_register_nomem);
    tcase_add_test(tc, test_fresh_segment_populated);
    tcase_add_test(tc, test_slot_layout);
    tcase_add_test(tc, test_heap_returns_to_baseline);
    tcase_add_test(tc, test_rss_returns_after_burst);
    tcase_add_test(tc, test_pool_kept_while_busy_trimmed_when_idle);
    tcase_add_test(tc, test_pool_takes_backlog_eases_when_caught_up);
    tcase_add_test(tc, test_pool_backlog_capped);
    tcase_add_test(tc, test_pool_aba);
    tcase_add_test(tc, test_cas16_semantics);
    tcase_add_test(tc, test_destroy_frees_everything);
    tcase_add_test(tc, test_failed_batch_gives_back);
    tcase_add_test(tc, test_misaligned_allocator_refused);
    tcase_add_test(tc, test_preallocate_errors);
    tcase_add_loop_test(tc, test_preallocate_no_alloc, 0, 3);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run("memory", suite());
}
