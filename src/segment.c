/*
 * segment.c - segments and the pool of drained ones.
 *
 * The pool is a Treiber stack whose head is a (pointer, tag) pair changed
 * by one 16-byte CAS; every successful CAS increments the tag, so a
 * segment popped, reused and pushed back at the same address cannot
 * satisfy a stale CAS (ABA).  A popper reads the top's pool_next, so the
 * top must not be freed meanwhile: the popper names it in its hazard
 * pointer first, and segments are only ever freed after a hazard scan
 * (a recycled one, mpscq_seg_put; a pooled one, mpscq_seg_pool_trim_most)
 * or at destroy.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "segment.h"
#include "arch.h"
#include "hazard.h"

/* AddressSanitizer does not see inside mmap'ed memory: keep segments on
 * the malloc heap there, where it checks every access. */
#if defined(__SANITIZE_ADDRESS__)
#define MPSCQ_SEG_MMAP 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MPSCQ_SEG_MMAP 0
#endif
#endif
#if !defined(MPSCQ_SEG_MMAP) && defined(MAP_ANONYMOUS)
#define MPSCQ_SEG_MMAP 1
#endif
#ifndef MPSCQ_SEG_MMAP
#define MPSCQ_SEG_MMAP 0
#endif
#ifdef MAP_POPULATE
#define MPSCQ_MAP_POPULATE MAP_POPULATE
#else
#define MPSCQ_MAP_POPULATE 0
#endif

/* The pool's bound once the consumer has caught up with its producers
 * (segment.h): MPSCQ_POOL_HIGH_BYTES of segments as they are allocated
 * (whole pages when mmap'ed), 4 to 1024 of them; and while it works
 * through a backlog, MPSCQ_POOL_WORK_BYTES, 4 to 8192.  A producer stopped
 * mid-enqueue holds recycling up (oldest first, design.md s. 4), so the
 * consumer recycles in bursts after each such stall, and the producers
 * need fresh segments during the next one: a pool of 4 sent most segments
 * to munmap and their successors to mmap (doc/performance.md).  The pool
 * only ever holds segments the queue had in use; it goes back to
 * MPSCQ_POOL_MAX when the consumer finds the queue idle. */
static long pool_bound(size_t budget, size_t bytes, long most)
{
    size_t n = budget / bytes;
    return n < MPSCQ_POOL_MAX ? MPSCQ_POOL_MAX : n > (size_t)most ? most : (long)n;
}

static void pool_bounds(struct mpscq *q, size_t bytes)
{
    q->pool_high = pool_bound(MPSCQ_POOL_HIGH_BYTES, bytes, 1024);
    q->pool_work = pool_bound(MPSCQ_POOL_WORK_BYTES, bytes, 8192);
}

void mpscq_seg_mem_setup(struct mpscq *q, int custom_allocator)
{
    q->seg_map_bytes = 0;
    pool_bounds(q, q->seg_bytes);
    if (custom_allocator || !MPSCQ_SEG_MMAP)
        return;
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || (page & (page - 1)))
        return;
    q->seg_map_bytes = (q->seg_bytes + (size_t)page - 1) & ~((size_t)page - 1);
    pool_bounds(q, q->seg_map_bytes);
}

void *mpscq_seg_mem_alloc(const struct mpscq *q)
{
#if MPSCQ_SEG_MMAP
    if (q->seg_map_bytes) {
        int e = errno; /* kept for a caller in a signal handler (design.md s. 13) */
        /* Populated: every page is written in the segment's first use
         * anyway (header, values, states), and one system call that maps
         * them costs less than a page fault each, taken later by
         * whichever producer or consumer touches the page first
         * (doc/performance.md: 10-22 % more throughput at 8 producers on
         * 2 CPUs, 4-13 % at 16, where most segments are fresh). */
        void *p = mmap(NULL, q->seg_map_bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MPSCQ_MAP_POPULATE, -1, 0);
        errno = e;
        return p == MAP_FAILED ? NULL : p;
    }
#endif
    return mpscq_alloc(q, q->seg_bytes);
}

void mpscq_seg_mem_free(const struct mpscq *q, void *s)
{
#if MPSCQ_SEG_MMAP
    if (q->seg_map_bytes) {
        munmap(s, q->seg_map_bytes);
        return;
    }
#endif
    mpscq_free(q, s, q->seg_bytes);
}

static void clear_segment(const struct mpscq *q, struct mpscq_segment *s)
{
    /* Plain stores: the segment is private to the caller here.  The
     * state bytes only, 8 a line (the spare too); values are written
     * before they are read. */
    for (size_t l = 0, n = mpscq_slot_lines(q->nslots); l < n; l++)
        memset((void *)mpscq_line_states(s, l), 0, MPSCQ_CACHELINE - MPSCQ_LINE_STATES);
    atomic_store_explicit(&s->next, NULL, memory_order_relaxed);
    s->prev = NULL;
    s->id = 0;
    s->base = 0;
}

void mpscq_seg_free(struct mpscq *q, struct mpscq_segment *s)
{
    MPSCQ_HB_FORGET(s);
    mpscq_seg_mem_free(q, s);
    MPSCQ_STAT_ADD(q, st_freed, 1);
}

static struct mpscq_segment *pool_pop(struct mpscq *q, struct mpscq_hp_rec *r)
{
    struct mpscq_segment *got = NULL;
    /* Two attempts at most: enqueue must stay wait-free, and a fresh
     * allocation is the fallback. */
    for (int attempt = 0; attempt < 2 && !got; attempt++) {
        uint64_t old[2];
        /* Acquire: a first reading, validated below. */
        old[1] = atomic_load_explicit(&q->pool.tag, memory_order_acquire);
        old[0] = (uint64_t)(uintptr_t)atomic_load_explicit(&q->pool.ptr, memory_order_acquire);
        struct mpscq_segment *top = (struct mpscq_segment *)(uintptr_t)old[0];
        if (!top)
            break;
        /* seq_cst XCHG (a full barrier): the hazard is published before we
         * re-read the head. */
        MPSCQ_RMW(1);
        atomic_exchange_explicit(&r->hp, top, memory_order_seq_cst);
        /* seq_cst loads, not acquire: C11 orders a later acquire load
         * after a seq_cst RMW only on hardware that happens to (x86, LDAR
         * on AArch64); with RCpc acquire loads (LDAPR) the re-read could
         * be satisfied before the hazard is visible.  As seq_cst
         * operations the XCHG, these loads, the freeing consumer's CAS16
         * that takes top out of the pool and its seq_cst fence and hazard
         * load are in one total order: if top is still here now, that
         * consumer's scan comes later and sees our hazard (design.md
         * s. 5).  Plain loads on x86. */
        if (atomic_load_explicit(&q->pool.tag, memory_order_seq_cst) != old[1] ||
            atomic_load_explicit(&q->pool.ptr, memory_order_seq_cst) != top) {
            MPSCQ_STAT_ADD(q, st_cas_fail, 1);
            continue;
        }
        MPSCQ_TEST_HOOK(MPSCQ_HOOK_POOL_POP, q, (uint64_t)(uintptr_t)top);
        uint64_t desired[2] = {
            /* Acquire: the pusher's link store precedes its CAS. */
            (uint64_t)(uintptr_t)atomic_load_explicit(&top->pool_next, memory_order_acquire),
            old[1] + 1,
        };
        MPSCQ_RMW(1);
        if (mpscq_arch_cas16(&q->pool, old, desired)) {
            /* Relaxed: pool_count only sizes the pool (approximately). */
            atomic_fetch_sub_explicit(&q->pool_count, 1, memory_order_relaxed);
            got = top;
        } else {
            MPSCQ_STAT_ADD(q, st_cas_fail, 1);
        }
    }
    /* Release: our reads of top are done before another thread may see
     * the hazard gone and free it. */
    MPSCQ_HB_BEFORE(&r->hp);
    atomic_store_explicit(&r->hp, NULL, memory_order_release);
    if (got) {
        MPSCQ_HB_AFTER(got); /* the pusher cleared it before its CAS */
        atomic_store_explicit(&got->pool_next, NULL, memory_order_relaxed);
        MPSCQ_STAT_ADD(q, st_recycled, 1);
    }
    return got;
}

static struct mpscq_segment *seg_fresh(struct mpscq *q);

struct mpscq_segment *mpscq_seg_pop(struct mpscq *q, struct mpscq_hp_rec *r)
{
    /* Relaxed: a hint whether popping is worth trying. */
    if (atomic_load_explicit(&q->pool_count, memory_order_relaxed) > 0)
        return pool_pop(q, r);
    return NULL;
}

struct mpscq_segment *mpscq_seg_get(struct mpscq *q, struct mpscq_hp_rec *r, int *pooled)
{
    struct mpscq_segment *s = NULL;
    if (pooled)
        *pooled = 0;
    /* Relaxed: a hint whether popping is worth trying. */
    if (atomic_load_explicit(&q->pool_count, memory_order_relaxed) > 0)
        s = pool_pop(q, r);
    if (s) {
        if (pooled)
            *pooled = 1;
        return s;
    }
    return seg_fresh(q);
}

int mpscq_seg_prealloc(struct mpscq *q, long n)
{
    /* Allocated first, pushed after: a failure frees what it made. */
    struct mpscq_segment *list = NULL;
    for (long i = 0; i < n; i++) {
        struct mpscq_segment *s = seg_fresh(q);
        if (!s) {
            while (list) {
                /* Relaxed: private to us until pushed. */
                struct mpscq_segment *nx = atomic_load_explicit(&list->pool_next,
                                                                memory_order_relaxed);
                mpscq_seg_free(q, list);
                list = nx;
            }
            return MPSCQ_NOMEM;
        }
        /* Relaxed: private to us until pushed. */
        atomic_store_explicit(&s->pool_next, list, memory_order_relaxed);
        list = s;
    }
    /* The pool keeps them from now on, idle or not (mpscq_pool_keep). */
    atomic_fetch_add_explicit(&q->pool_keep, n, memory_order_relaxed);
    while (list) {
        /* Relaxed: private to us until pushed. */
        struct mpscq_segment *nx = atomic_load_explicit(&list->pool_next, memory_order_relaxed);
        mpscq_seg_give_back(q, list, 0);
        list = nx;
    }
    return MPSCQ_OK;
}

/* A segment straight from the allocator, cleared; NULL when it fails. */
static struct mpscq_segment *seg_fresh(struct mpscq *q)
{
    struct mpscq_segment *s = mpscq_seg_mem_alloc(q);
    if (!s)
        return NULL;
    if (MPSCQ_UNLIKELY((uintptr_t)s & 15)) {
        /* A custom alloc_fn broke its contract (mpscq.h: 64-byte aligned).
         * The atomics in the header need at least 16: fail, do not fault. */
        mpscq_seg_mem_free(q, s);
        mpscq_log(q, MPSCQ_LOG_ERROR, "alloc_fn returned memory that is not 16-byte aligned");
        return NULL;
    }
    mpscq_seg_prepare(q, s);
    return s;
}

void mpscq_seg_prepare(struct mpscq *q, struct mpscq_segment *s)
{
    memset(s, 0, sizeof *s);
    atomic_init(&s->next, NULL);
    atomic_init(&s->pool_next, NULL);
    clear_segment(q, s);
    MPSCQ_HG_ATOMIC_VAR(s->next);
    MPSCQ_HG_ATOMIC_VAR(s->pool_next);
    mpscq_seg_hg_states(s, q->nslots);
    MPSCQ_STAT_ADD(q, st_alloc, 1);
}

/* Push s (cleared by the caller) on the pool, trying at most `tries`
 * CASes (0: until it works).  Returns the failed CASes, or -1 when it gave
 * up (s is then still the caller's). */
static long pool_push(struct mpscq *q, struct mpscq_segment *s, unsigned tries)
{
    struct mpscq_backoff b;
    mpscq_backoff_init(&b);
    uint64_t old[2];
    /* Relaxed: a first guess; the 16-byte CAS validates it and returns
     * the current value on failure. */
    old[1] = atomic_load_explicit(&q->pool.tag, memory_order_relaxed);
    old[0] = (uint64_t)(uintptr_t)atomic_load_explicit(&q->pool.ptr, memory_order_relaxed);
    for (;;) {
        atomic_store_explicit(&s->pool_next,
                              (struct mpscq_segment *)(uintptr_t)old[0],
                              memory_order_relaxed);
        uint64_t desired[2] = { (uint64_t)(uintptr_t)s, old[1] + 1 };
        /* seq_cst CAS: publishes the cleared segment (its states, next and
         * pool_next stores above happen before a popper's acquire load). */
        MPSCQ_HB_BEFORE(s);
        MPSCQ_RMW(1);
        if (!MPSCQ_TEST_FORCE_CAS_FAIL() && mpscq_arch_cas16(&q->pool, old, desired))
            break;
        MPSCQ_STAT_ADD(q, st_cas_fail, 1);
        if (tries && b.fails + 1 >= tries)
            return -1;
        mpscq_backoff_wait(&b);
    }
    /* Relaxed: see pool_pop. */
    atomic_fetch_add_explicit(&q->pool_count, 1, memory_order_relaxed);
    return (long)b.fails;
}

void mpscq_seg_put(struct mpscq *q, struct mpscq_segment *s)
{
    /* The consumer recycles while it works through a backlog, and a free
     * there (munmap: a system call and a TLB shootdown of the other CPUs)
     * would be paid by every message behind it: so the pool takes every
     * recycled segment up to its working bound, and is eased back to its
     * caught-up bound when the consumer catches up (mpscq_seg_pool_ease).
     * Relaxed: the bound is approximate. */
    if (atomic_load_explicit(&q->pool_count, memory_order_relaxed) >= mpscq_pool_work(q)) {
        mpscq_seg_free(q, s);
        return;
    }
    MPSCQ_HB_FORGET(s);
    clear_segment(q, s);
    if (pool_push(q, s, 0) >= 1000)
        mpscq_warn_contention(q, 1);
}

int mpscq_seg_give_back(struct mpscq *q, struct mpscq_segment *s, unsigned tries)
{
    MPSCQ_HB_FORGET(s);
    clear_segment(q, s);
    return pool_push(q, s, tries) >= 0;
}

void mpscq_seg_pool_trim_most(struct mpscq *q, long keep, long most)
{
    /* Relaxed: a hint; the CAS16 below decides. */
    while (most-- > 0 && atomic_load_explicit(&q->pool_count, memory_order_relaxed) > keep) {
        uint64_t old[2];
        /* Acquire: the pusher's clearing and link precede its CAS.  No
         * hazard of our own is needed to read top->pool_next: only the
         * consumer (we) frees a pooled segment. */
        old[1] = atomic_load_explicit(&q->pool.tag, memory_order_acquire);
        old[0] = (uint64_t)(uintptr_t)atomic_load_explicit(&q->pool.ptr, memory_order_acquire);
        struct mpscq_segment *top = (struct mpscq_segment *)(uintptr_t)old[0];
        if (!top)
            return;
        uint64_t desired[2] = {
            (uint64_t)(uintptr_t)atomic_load_explicit(&top->pool_next, memory_order_acquire),
            old[1] + 1,
        };
        MPSCQ_RMW(1);
        if (!mpscq_arch_cas16(&q->pool, old, desired)) {
            MPSCQ_STAT_ADD(q, st_cas_fail, 1);
            return; /* busy: try again on a later call */
        }
        /* Relaxed: see pool_pop. */
        atomic_fetch_sub_explicit(&q->pool_count, 1, memory_order_relaxed);
        /* StoreLoad: the CAS16 that took top out precedes the scan, so a
         * popper that still read top in the pool after publishing its
         * hazard is seen (pool_pop). */
        atomic_thread_fence(memory_order_seq_cst);
        if (mpscq_hp_protected(q, top, 0)) {
            /* Back as it is (it was cleared when first pushed): only its
             * link changes, which a stale popper may be reading. */
            (void)pool_push(q, top, 0);
            return;
        }
        mpscq_seg_free(q, top);
    }
}

void mpscq_seg_pool_trim(struct mpscq *q, long keep)
{
    mpscq_seg_pool_trim_most(q, keep, LONG_MAX);
}

void mpscq_seg_pool_drain(struct mpscq *q)
{
    /* Relaxed throughout: destroy runs alone. */
    struct mpscq_segment *s = atomic_load_explicit(&q->pool.ptr, memory_order_relaxed);
    while (s) {
        struct mpscq_segment *next = atomic_load_explicit(&s->pool_next, memory_order_relaxed);
        mpscq_seg_free(q, s);
        s = next;
    }
    atomic_store_explicit(&q->pool.ptr, NULL, memory_order_relaxed);
    atomic_store_explicit(&q->pool_count, 0, memory_order_relaxed);
}

/* Recycle the oldest list segment, whose tickets are all handled and
 * whose successor is linked (the caller checked both): unlink it from
 * the producers' entry point, then a hazard scan (doc/design.md,
 * "Reclamation").  0 when a hazard names it (nothing changed). */
int mpscq_seg_recycle_oldest(struct mpscq *q)
{
    struct mpscq_segment *o = q->oldest;
    /* Non-NULL (the caller's check).  Acquire: the linker's id. */
    struct mpscq_segment *next = atomic_load_explicit(&o->next, memory_order_acquire);
    /* 1. Unlink o from the only shared entry point, the hint. */
    struct mpscq_segment *h = atomic_load_explicit(&q->hint, memory_order_acquire);
    if (h == o) {
        MPSCQ_RMW(1);
        MPSCQ_HB_BEFORE(&q->hint);
        /* seq_cst; on failure a producer moved the hint further. */
        if (!atomic_compare_exchange_strong_explicit(&q->hint, &h, next,
                                                     memory_order_seq_cst,
                                                     memory_order_relaxed))
            MPSCQ_STAT_ADD(q, st_cas_fail, 1);
    }
    /* 2. StoreLoad: the unlink precedes the hazard scan. */
    atomic_thread_fence(memory_order_seq_cst);
    if (mpscq_hp_protected(q, o, 1))
        return 0;
    q->oldest = next;
    mpscq_seg_put(q, o);
    return 1;
}

/* Recycle drained segments, oldest first, stopping at the first one a
 * hazard pointer names. */
void mpscq_seg_reclaim(struct mpscq *q)
{
    uint64_t head_id = q->head >> q->shift;
    /* scan_seg was reached from oldest through next: every segment
     * before it has a successor. */
    while (q->oldest->id < head_id && q->oldest != q->scan_seg)
        if (!mpscq_seg_recycle_oldest(q))
            break;
}
