/* check_equiv.c - every x86-64 NASM routine against its C twin, in the
 * manner of dav1d's checkasm: the same seeded random operation sequences
 * through a queue driven by the asm and one driven by the C code give the
 * same results and the same queue state after every operation (the
 * ring's fast paths likewise, their results and bytes); every asm
 * call goes through a trampoline that checks the callee-saved registers
 * and the stack pointer; and a multi-threaded delivery run uses each.
 * Linked against the test library, whose routines dispatch through
 * mpscq_impl (src/arch.h).  In a C-only build the asm half is skipped.
 * MPSCQ_TEST_SEED=N replays one seed. */
#include "config.h"

#include <check.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "internal.h"
#include "arch.h"

_Atomic int mpscq_test_abi_failures;

#ifdef MPSCQ_HAVE_ASM
long mpscq_test_checked_call(void *fn, long a0, long a1, long a2, long a3, long a4);
#define CALL(fn, a0, a1, a2, a3, a4)                                              \
    mpscq_test_checked_call((void *)(fn), (long)(uintptr_t)(a0), (long)(uintptr_t)(a1), \
                            (long)(uintptr_t)(a2), (long)(uintptr_t)(a3),          \
                            (long)(uintptr_t)(a4))

static int chk_cas16(void *p, uint64_t e[2], const uint64_t d[2])
{
    return (int)CALL(mpscq_arch_cas16_x86_64, p, e, d, 0, 0);
}
static void chk_pause_loop(unsigned long n)
{
    CALL(mpscq_arch_pause_loop_x86_64, n, 0, 0, 0, 0);
}
static int chk_enqueue(struct mpscq *q, struct mpscq_hp_rec *r, void *m, uint64_t admit)
{
    return (int)CALL(mpscq_fast_enqueue_x86_64, q, r, m, admit, 0);
}
static uint64_t chk_reserve(struct mpscq *q, struct mpscq_hp_rec *r, uint64_t n,
                            uint64_t admit, struct mpscq_segment **s)
{
    return (uint64_t)CALL(mpscq_fast_reserve_x86_64, q, r, n, admit, s);
}
static int chk_dequeue(struct mpscq *q, void **m)
{
    return (int)CALL(mpscq_fast_dequeue_x86_64, q, m, 0, 0, 0);
}
static int chk_enqueue_entry(struct mpscq *q, void *m)
{
    return (int)CALL(mpscq_enqueue_entry_x86_64, q, m, 0, 0, 0);
}
static int chk_dequeue_entry(struct mpscq *q, void **m)
{
    return (int)CALL(mpscq_dequeue_entry_x86_64, q, m, 0, 0, 0);
}

static int chk_ring_claim(struct mpscq_ring *r, struct ring_reg *g, size_t len)
{
    return (int)CALL(mpscq_ring_claim_x86_64, r, g, len, 0, 0);
}
static int chk_ring_publish(struct mpscq_ring *r, struct ring_reg *g)
{
    return (int)CALL(mpscq_ring_publish_x86_64, r, g, 0, 0, 0);
}
static int chk_ring_write(struct mpscq_ring *r, struct ring_reg *g, const void *d, size_t len)
{
    return (int)CALL(mpscq_ring_write_x86_64, r, g, d, len, 0);
}

/* The asm routines, each called through the ABI-checking trampoline. */
static const struct mpscq_impl impl_asm_checked = {
    "x86_64-nasm (checked)", chk_cas16, chk_pause_loop,
    chk_enqueue, chk_reserve, chk_dequeue, chk_enqueue_entry, chk_dequeue_entry,
    chk_ring_claim, chk_ring_publish, chk_ring_write,
};
#endif

static uint64_t rng;
static uint64_t rnd(void)
{
    /* xorshift64* */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545F4914F6CDD1DULL;
}

static uint64_t seed_for(int i)
{
    const char *s = getenv("MPSCQ_TEST_SEED");
    return s ? strtoull(s, NULL, 0) : 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
}

/* Everything observable about a queue, public and internal. */
struct state {
    size_t size;
    struct mpscq_stats st;
    uint64_t tail, head, scan, last, limit, dequeued;
    int last_cont, closed;
    size_t npend;
    uint64_t released, rejected, release_debt;
    uint64_t scan_seg_id, hint_id, oldest_id;
};

static void snap(mpscq_t *pq, struct state *s)
{
    struct mpscq *q = (struct mpscq *)pq;
    memset(s, 0, sizeof *s);
    s->size = mpscq_size(pq);
    mpscq_stats(pq, &s->st);
    /* Allocation counters depend on nothing the routines do; keep the
     * ones the routines decide. */
    s->st.segments_allocated = s->st.segments_recycled = s->st.segments_freed = 0;
    s->st.cas_failures = 0;
    s->tail = atomic_load(&q->tail);
    s->head = q->head;
    s->scan = q->scan;
    s->last = q->last;
    s->limit = q->limit;
    s->dequeued = atomic_load(&q->dequeued);
    s->last_cont = q->last_cont;
    s->closed = mpscq_is_closed(pq);
    s->npend = q->npend;
    s->released = atomic_load(&q->released);
    s->rejected = atomic_load(&q->rejected);
    s->release_debt = q->release_debt;
    s->scan_seg_id = q->scan_seg->id;
    s->hint_id = atomic_load(&q->hint)->id;
    s->oldest_id = q->oldest->id;
}

/* Runs one operation chosen by `op` on q; returns a comparable result. */
struct result {
    int rc;
    size_t n;
    void *out[16];
};

static struct result do_op(mpscq_t *q, uint64_t op, uint64_t *next_val)
{
    struct result r;
    memset(&r, 0, sizeof r);
    switch (op % 16) {
    case 0: case 1: case 2: case 3: case 4: case 5:
        r.rc = mpscq_enqueue(q, (void *)(uintptr_t)(*next_val)++);
        break;
    case 6: case 7: {
        void *b[12];
        size_t n = (size_t)(op >> 8) % 12;
        for (size_t k = 0; k < n; k++)
            b[k] = (void *)(uintptr_t)(*next_val)++;
        r.rc = mpscq_enqueue_batch(q, b, n);
        break;
    }
    case 8: case 9: case 10: case 11: case 12:
        r.rc = mpscq_dequeue(q, &r.out[0]);
        break;
    case 13: case 14:
        r.n = mpscq_dequeue_batch(q, r.out, (size_t)(op >> 8) % 16);
        break;
    case 15:
        if ((op >> 8) % 64 == 0)
            mpscq_close(q);
        r.rc = mpscq_dequeue_wait(q, &r.out[0], 0);
        break;
    }
    return r;
}

static void equiv_run(const struct mpscq_impl *impl_a, const struct mpscq_impl *impl_b,
                      uint64_t seed, int ops)
{
    static const size_t slots[] = { 2, 4, 8, 64, 1024 };
    static const size_t caps[] = { 0, 0, 1, 3, 17, 100 };
    rng = seed | 1;
    mpscq_config c;
    mpscq_config_init(&c);
    c.segment_slots = slots[rnd() % 5];
    c.capacity = caps[rnd() % 6];
    mpscq_t *qa, *qb;
    ck_assert_int_eq(mpscq_create(&qa, &c), MPSCQ_OK);
    ck_assert_int_eq(mpscq_create(&qb, &c), MPSCQ_OK);
    uint64_t va = 0, vb = 0;
    for (int i = 0; i < ops; i++) {
        uint64_t op = rnd();
        mpscq_impl = impl_a;
        struct result ra = do_op(qa, op, &va);
        mpscq_impl = impl_b;
        struct result rb = do_op(qb, op, &vb);
        mpscq_impl = &mpscq_impl_base;
        ck_assert_msg(ra.rc == rb.rc && ra.n == rb.n &&
                          memcmp(ra.out, rb.out, sizeof ra.out) == 0,
                      "seed %#" PRIx64 " op %d (%" PRIu64 "): %s gives rc %d n %zu, %s gives rc %d n %zu",
                      seed, i, op % 16, impl_a->name, ra.rc, ra.n, impl_b->name, rb.rc, rb.n);
        struct state sa, sb;
        snap(qa, &sa);
        snap(qb, &sb);
        ck_assert_msg(memcmp(&sa, &sb, sizeof sa) == 0,
                      "seed %#" PRIx64 " op %d: queue state differs (tail %" PRIu64 "/%" PRIu64
                      ", scan %" PRIu64 "/%" PRIu64 ", size %zu/%zu)",
                      seed, i, sa.tail, sb.tail, sa.scan, sb.scan, sa.size, sb.size);
    }
    mpscq_destroy(qa, NULL, NULL);
    mpscq_destroy(qb, NULL, NULL);
}

START_TEST(test_equiv_sequences)
{
#ifdef MPSCQ_HAVE_ASM
    uint64_t seed = seed_for(_i);
    atomic_store(&mpscq_test_abi_failures, 0);
    equiv_run(&impl_asm_checked, &mpscq_impl_base, seed, (int)tu_scaled(4000, 200));
    ck_assert_msg(atomic_load(&mpscq_test_abi_failures) == 0,
                  "seed %#" PRIx64 ": an asm routine broke the ABI", seed);
#else
    /* C-only build: the sequences still run through the C twins. */
    equiv_run(&mpscq_impl_base, &mpscq_impl_base, seed_for(_i), 200);
#endif
}
END_TEST

START_TEST(test_equiv_cas16)
{
    const struct mpscq_impl *impls[2] = { &mpscq_impl_base, &mpscq_impl_base };
#ifdef MPSCQ_HAVE_ASM
    impls[1] = &impl_asm_checked;
#endif
    rng = seed_for(99);
    for (int i = 0; i < 10000; i++) {
        _Alignas(16) uint64_t w[2][2];
        uint64_t init[2] = { rnd() % 4, rnd() % 4 };
        uint64_t e0[2] = { rnd() % 4, rnd() % 4 };
        uint64_t d[2] = { rnd(), rnd() };
        int rc[2];
        uint64_t e[2][2];
        for (int k = 0; k < 2; k++) {
            memcpy(w[k], init, sizeof init);
            memcpy(e[k], e0, sizeof e0);
            rc[k] = impls[k]->cas16(w[k], e[k], d);
        }
        ck_assert_int_eq(rc[0], rc[1]);
        ck_assert_int_eq(rc[0], init[0] == e0[0] && init[1] == e0[1]);
        ck_assert(memcmp(w[0], w[1], sizeof w[0]) == 0);
        ck_assert(memcmp(e[0], e[1], sizeof e[0]) == 0);
        ck_assert(memcmp(e[0], init, sizeof init) == 0); /* current value either way */
    }
    /* Spin hints return, for 0 and for some iterations. */
    for (int k = 0; k < 2; k++) {
        impls[k]->pause_loop(0);
        impls[k]->pause_loop(1000);
    }
    int abi = atomic_load(&mpscq_test_abi_failures);
    ck_assert_msg(abi == 0, "asm cas16 or pause loop broke the ABI %d times", abi);
}
END_TEST

/* mpscq_ring: the same seeded writes, reserves and reads through a ring
 * driven by each impl give the same results, bytes and counters (the
 * ring's fast paths: claim, publish, write). */
enum { RING_MSG_MAX = 300 };

/* op % 8: 0-2 write, 3 reserve and commit, (op >> 8) % RING_MSG_MAX + 1
 * bytes; 4-7 read. */
static int ring_op(mpscq_ring_t *r, uint64_t op, uint64_t *next, unsigned char *out,
                   size_t *len)
{
    unsigned char in[RING_MSG_MAX];
    size_t n = 1 + (size_t)(op >> 8) % RING_MSG_MAX;
    switch (op % 8) {
    case 0: case 1: case 2:
        for (size_t k = 0; k < n; k++)
            in[k] = (unsigned char)(*next + k);
        (*next)++;
        return mpscq_ring_write(r, in, n);
    case 3: {
        void *buf;
        int rc = mpscq_ring_reserve(r, n, &buf);
        if (rc != MPSCQ_OK)
            return rc;
        memset(buf, (int)(*next)++, n);
        return mpscq_ring_commit(r, buf);
    }
    default:
        *len = 0;
        return mpscq_ring_read(r, out, RING_MSG_MAX, len);
    }
}

struct ring_pair {
    mpscq_ring_t *r[2];
    const struct mpscq_impl *impl[2];
    uint64_t next[2];
    uint64_t seed;
};

/* One op on both rings, each through its impl; fails the test unless the
 * two agree.  Returns the common status. */
static int ring_step(struct ring_pair *p, uint64_t op, int i)
{
    unsigned char out[2][RING_MSG_MAX];
    size_t len[2] = { 0, 0 };
    int rc[2];
    for (int k = 0; k < 2; k++) {
        mpscq_impl = p->impl[k];
        rc[k] = ring_op(p->r[k], op, &p->next[k], out[k], &len[k]);
    }
    mpscq_impl = &mpscq_impl_base;
    ck_assert_msg(rc[0] == rc[1] && len[0] == len[1] &&
                      (rc[0] != MPSCQ_OK || memcmp(out[0], out[1], len[0]) == 0),
                  "seed %#" PRIx64 " op %d (%" PRIu64 "): %s gives rc %d len %zu, c11 rc %d len %zu",
                  p->seed, i, op % 8, p->impl[0]->name, rc[0], len[0], rc[1], len[1]);
    return rc[0];
}

START_TEST(test_equiv_ring)
{
    struct ring_pair p = { .impl = { &mpscq_impl_base, &mpscq_impl_base }, .seed = seed_for(_i) };
#ifdef MPSCQ_HAVE_ASM
    p.impl[0] = &impl_asm_checked;
    atomic_store(&mpscq_test_abi_failures, 0);
#endif
    rng = p.seed | 1;
    mpscq_ring_config c;
    mpscq_ring_config_init(&c);
    c.bytes = 4096; /* a page: FULL and the wrap come often */
    c.max_message = RING_MSG_MAX;
    for (int k = 0; k < 2; k++)
        ck_assert_int_eq(mpscq_ring_create(&p.r[k], NULL, &c), MPSCQ_OK);
    int ops = (int)tu_scaled(20000, 500);
    for (int i = 0; i < ops; i++)
        ring_step(&p, rnd(), i);
    /* Then, whatever the scale left in them: drain both, fill both until
     * FULL with 100-byte writes and drain them again. */
    for (int phase = 0; phase < 3; phase++) {
        uint64_t op = phase == 1 ? (uint64_t)99 << 8 : 4;
        int rc, i = 0;
        while ((rc = ring_step(&p, op, i++)) == MPSCQ_OK)
            ;
        ck_assert_int_eq(rc, phase == 1 ? MPSCQ_FULL : MPSCQ_EMPTY);
    }
    struct mpscq_ring_stats st[2];
    for (int k = 0; k < 2; k++)
        mpscq_ring_stats(p.r[k], &st[k]);
    ck_assert_uint_eq(st[0].delivered, st[1].delivered);
    ck_assert_uint_eq(st[0].full, st[1].full);
    ck_assert_uint_gt(st[0].delivered, 0);
    ck_assert_uint_gt(st[0].full, 0);
    ck_assert_uint_eq(st[0].corrupt + st[0].dropped_claims, 0);
    for (int k = 0; k < 2; k++)
        mpscq_ring_detach(p.r[k]);
    int abi = atomic_load(&mpscq_test_abi_failures);
    ck_assert_msg(abi == 0, "seed %#" PRIx64 ": asm ring routines broke the ABI %d times",
                  p.seed, abi);
}
END_TEST

/* Multi-threaded: 8 producers through 4-slot segments, with each impl. */
struct mt_arg {
    mpscq_t *q;
    unsigned id;
    uint64_t n;
    size_t batch;
};

static void *mt_producer(void *p)
{
    struct mt_arg *a = p;
    void *buf[4];
    for (uint64_t i = 0; i < a->n;) {
        if (a->batch && (i % 3) == 0 && a->n - i >= a->batch) {
            for (size_t k = 0; k < a->batch; k++)
                buf[k] = tu_msg(a->id, i + k);
            ck_assert_int_eq(mpscq_enqueue_batch(a->q, buf, a->batch), MPSCQ_OK);
            i += a->batch;
        } else {
            ck_assert_int_eq(mpscq_enqueue(a->q, tu_msg(a->id, i)), MPSCQ_OK);
            i++;
        }
    }
    return NULL;
}

START_TEST(test_equiv_threads)
{
    const struct mpscq_impl *impl = &mpscq_impl_base;
#ifdef MPSCQ_HAVE_ASM
    if (_i == 1)
        impl = &mpscq_impl_asm;
#endif
    mpscq_impl = impl;
    mpscq_config c;
    mpscq_config_init(&c);
    c.segment_slots = 4;
    mpscq_t *q;
    ck_assert_int_eq(mpscq_create(&q, &c), MPSCQ_OK);
    ck_assert_str_eq(mpscq_implementation(), impl->name);
    pthread_t th[8];
    struct mt_arg a[8];
    uint64_t n = tu_scaled(20000, 300), expected[8];
    for (unsigned p = 0; p < 8; p++) {
        a[p] = (struct mt_arg){ q, p, n, p % 2 ? 3 : 0 };
        expected[p] = n;
        ck_assert_int_eq(pthread_create(&th[p], NULL, mt_producer, &a[p]), 0);
    }
    tu_drain_verify(q, 8, expected);
    for (unsigned p = 0; p < 8; p++)
        pthread_join(th[p], NULL);
    mpscq_destroy(q, NULL, NULL);
    mpscq_impl = &mpscq_impl_base;
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("equiv");
    TCase *tc = tcase_create("equiv");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_equiv_sequences, 0, 24);
    tcase_add_test(tc, test_equiv_cas16);
    tcase_add_loop_test(tc, test_equiv_ring, 0, 4);
    tcase_add_loop_test(tc, test_equiv_threads, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    printf("check_equiv: asm routines %s\n",
#ifdef MPSCQ_HAVE_ASM
           "present: comparing x86_64-nasm with c11"
#else
           "absent in this build: C twins only"
#endif
    );
    return tu_run("equiv", suite());
}
