/*
 * set.c - queue sets: one consumer over several queues, by priority
 * (doc/design.md s. 15).
 *
 * A set is its members sorted by priority, grouped into levels of equal
 * priority.  A take scans the levels in order, round robin inside a
 * level, through the members' own consumer calls (mpscq_consumer_enter,
 * the dequeue fast path): the set adds nothing to any queue's hot path
 * and producers do not know sets exist.
 *
 * Sleeping uses each member's own wake-up protocol (wait.h, design.md
 * s. 7) at once: the set's consumer stores parked = 1 in every member,
 * pays one barrier for all of them, looks again, and sleeps in one
 * futex_waitv(2) over the members' parked words.  A producer of any
 * member that finds parked set wakes that word exactly as it would wake
 * the queue's own consumer, so it pays what it always pays: one load of
 * parked while the consumer is awake.  Without futex_waitv (kernels
 * before 5.16, qemu-user, Valgrind), or where it is refused (seccomp),
 * the set polls (MPSCQ_SET_POLL_NS).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __linux__
#include <linux/futex.h>
#include <linux/time_types.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "arch.h"
#include "consumer.h"
#include "wait.h"

/* Without futex_waitv, the set's sleep is a futex wait on its first live
 * member woken by that member's producers, ended every this long to look
 * at the others. */
#define MPSCQ_SET_POLL_NS 200000u

#if defined(__linux__) && defined(SYS_futex_waitv) && defined(FUTEX_32)
#define MPSCQ_HAVE_WAITV 1
#endif

#ifdef MPSCQ_TEST_HOOKS
_Atomic int mpscq_test_set_poll;
#endif

struct set_member {
    struct mpscq *q;
    unsigned prio;
    int drained;                /* its dequeue said CLOSED: it stays so */
    uint64_t seen_tail;         /* q->tail after its last EMPTY dequeue */
    uint64_t idle_tail;         /* q->tail when q was found idle (inside a
                                 * consumer call), nothing taken since; else
                                 * MPSCQ_TICKET_UNSET */
};

struct set_level {              /* members [first, first + count) */
    unsigned first, count;
    unsigned rr;                /* the member to try first (round robin) */
    unsigned long starve;       /* messages taken from higher levels since
                                 * this one was served or found empty */
};

struct mpscq_set {
    unsigned n, nlevels;
    unsigned fair_k;            /* 0: strict priority */
    unsigned spin_ns;           /* adaptive spin budget, as a queue's */
    uint64_t nap_over;          /* naps' recent overrun, smoothed (wait.c) */
    struct set_member m[MPSCQ_SET_MAX];
    struct set_level lv[MPSCQ_SET_MAX];
};

int mpscq_set_create(mpscq_set_t **s)
{
    if (!s)
        return MPSCQ_INVAL;
    struct mpscq_set *set = calloc(1, sizeof *set);
    if (!set)
        return MPSCQ_NOMEM;
    set->spin_ns = MPSCQ_WAIT_SPIN_MAX_NS;
    /* Helgrind: a process-wide flag read and written only atomically, by
     * every set's thread (and the tests). */
    MPSCQ_HG_ATOMIC(&mpscq_set_waitv_missing, sizeof mpscq_set_waitv_missing);
    *s = set;
    return MPSCQ_OK;
}

/* The levels from the sorted members; round robin and starvation counts
 * start afresh. */
static void relevel(struct mpscq_set *s)
{
    s->nlevels = 0;
    for (unsigned i = 0; i < s->n; i++) {
        if (i == 0 || s->m[i].prio != s->m[i - 1].prio)
            s->lv[s->nlevels++] = (struct set_level){ .first = i };
        s->lv[s->nlevels - 1].count++;
    }
}

int mpscq_set_add(mpscq_set_t *s, mpscq_t *q, unsigned priority)
{
    if (!s || !q || s->n == MPSCQ_SET_MAX)
        return MPSCQ_INVAL;
    /* The set's thread is a member's single consumer. */
    if (q->many)
        return MPSCQ_INVAL;
    struct mpscq_set *none = NULL;
    /* Acquire on success: pairs with the release that cleared the field
     * (mpscq_set_remove, mpscq_set_destroy), so a set that takes the
     * queue over from another set's thread comes after that set's last
     * use of it.  (The queue's consumer state itself is handed over by
     * the consumer check of its next consumer call, design.md s. 8.1.)
     * Relaxed on failure: nothing was read but the refusal. */
    if (!atomic_compare_exchange_strong_explicit(&q->set, &none, s, memory_order_acquire,
                                                 memory_order_relaxed))
        return MPSCQ_INVAL;
    unsigned at = s->n;
    while (at > 0 && s->m[at - 1].prio > priority)
        at--;
    memmove(&s->m[at + 1], &s->m[at], (s->n - at) * sizeof s->m[0]);
    s->m[at] = (struct set_member){ .q = q, .prio = priority, .seen_tail = MPSCQ_TICKET_UNSET,
                                .idle_tail = MPSCQ_TICKET_UNSET };
    s->n++;
    relevel(s);
    return MPSCQ_OK;
}

/* Take member i out (its set field is the caller's business). */
static void drop_member(struct mpscq_set *s, unsigned i)
{
    memmove(&s->m[i], &s->m[i + 1], (s->n - i - 1) * sizeof s->m[0]);
    s->n--;
    relevel(s);
}

int mpscq_set_remove(mpscq_set_t *s, mpscq_t *q)
{
    if (!s || !q)
        return MPSCQ_INVAL;
    for (unsigned i = 0; i < s->n; i++) {
        if (s->m[i].q == q) {
            drop_member(s, i);
            /* Release: a set that adds q next (any thread) finds it
             * free only after this set has stopped using it. */
            atomic_store_explicit(&q->set, NULL, memory_order_release);
            return MPSCQ_OK;
        }
    }
    return MPSCQ_INVAL;
}

void mpscq_set_leave(struct mpscq *q)
{
    /* Relaxed: mpscq_destroy runs alone, and the set is used by the
     * destroying thread or not at all meanwhile (mpscq_destroy(3)). */
    struct mpscq_set *s = atomic_load_explicit(&q->set, memory_order_relaxed);
    if (s)
        mpscq_set_remove(s, q);
}

int mpscq_set_fairness(mpscq_set_t *s, unsigned k)
{
    if (!s)
        return MPSCQ_INVAL;
    s->fair_k = k;
    for (unsigned l = 0; l < s->nlevels; l++)
        s->lv[l].starve = 0;
    return MPSCQ_OK;
}

void mpscq_set_destroy(mpscq_set_t *s)
{
    if (!s)
        return;
    for (unsigned i = 0; i < s->n; i++)
        /* Release, as in mpscq_set_remove. */
        atomic_store_explicit(&s->m[i].q->set, NULL, memory_order_release);
    free(s);
}

/* ------------------------------------------------------------------ */
/* Taking                                                               */

/* One dequeue from a member, as a consumer call of it. */
static inline __attribute__((always_inline)) int take_member(struct set_member *mb, void **msg)
{
    struct mpscq *q = mb->q;
    /* An idle member costs a load, not a consumer call and an empty
     * dequeue: a set looks at every higher-priority member before each
     * message it takes from a lower one.  Relaxed: an EMPTY linearized at
     * this load (no ticket issued past head: every message enqueued so
     * far was taken).  When the set is about to sleep, its barrier orders
     * this load as it would order a look at a slot: a producer's
     * fetch-and-add precedes its slot write and its read of parked
     * (design.md s. 15).  While only this thread consumes q, q's
     * consumer state changes only by our dequeues, so the same tail means
     * the same idle queue. */
    if (mb->idle_tail != MPSCQ_TICKET_UNSET) {
        if (atomic_load_explicit(&q->tail, memory_order_relaxed) == mb->idle_tail)
            return MPSCQ_EMPTY;
        mb->idle_tail = MPSCQ_TICKET_UNSET;
    }
    if (MPSCQ_UNLIKELY(mb->drained))
        return MPSCQ_CLOSED;
    int rc = mpscq_consumer_enter(q);
    if (MPSCQ_UNLIKELY(rc != MPSCQ_OK))
        return rc;
    rc = mpscq_dequeue_in(q, msg);
    if (rc == MPSCQ_EMPTY) {
        /* Idle: found empty twice with no ticket issued in between, and
         * nothing left to do.  (A queue whose producers keep coming stays
         * on the full dequeue, which reads the slot it waits for rather
         * than the producers' ticket line.)  Relaxed: as above. */
        uint64_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
        if (t == mb->seen_tail && mpscq_dequeue_idle(q, t))
            mb->idle_tail = t;
        mb->seen_tail = t;
    } else if (MPSCQ_UNLIKELY(rc == MPSCQ_CLOSED)) {
        mb->drained = 1;
    }
    mpscq_consumer_exit();
    return rc;
}

/* Folds one answer (a member's or a level's) into a scan: MPSCQ_OK (a
 * message), MPSCQ_EMPTY (go on; *open = 1 unless it was CLOSED), or a
 * BUSY or NOMEM to return. */
static inline __attribute__((always_inline)) int fold(int rc, int *open)
{
    if (rc == MPSCQ_EMPTY)
        *open = 1;
    return rc == MPSCQ_CLOSED ? MPSCQ_EMPTY : rc;
}

/* One message from level l: OK, EMPTY, CLOSED (every member drained), or
 * a member's BUSY or NOMEM. */
static inline __attribute__((always_inline)) int take_level(struct mpscq_set *s, unsigned l,
                                                            mpscq_t **from, void **msg)
{
    struct set_level *lv = &s->lv[l];
    struct set_member *first = &s->m[lv->first];
    unsigned k = lv->rr;
    int open = 0;
    for (unsigned j = 0; j < lv->count; j++) {
        unsigned next = k + 1 == lv->count ? 0 : k + 1;
        int rc = fold(take_member(&first[k], msg), &open);
        if (rc == MPSCQ_OK) {
            lv->rr = next;
            *from = first[k].q;
        }
        if (rc != MPSCQ_EMPTY)
            return rc;
        k = next;
    }
    return open ? MPSCQ_EMPTY : MPSCQ_CLOSED;
}

/* The scan in priority order: OK, EMPTY, CLOSED (every member drained),
 * BUSY or NOMEM.  Level l was served: *served_at = l. */
static inline __attribute__((always_inline)) int scan_levels(struct mpscq_set *s, mpscq_t **from,
                                                             void **msg, unsigned *served_at)
{
    int open = 0, rc;
    unsigned l = 0;
    if (s->nlevels == s->n) {
        /* One queue per priority (lanes): no round robin to keep. */
        for (; l < s->n; l++)
            if ((rc = fold(take_member(&s->m[l], msg), &open)) != MPSCQ_EMPTY) {
                if (rc == MPSCQ_OK)
                    *from = s->m[l].q;
                goto out;
            }
    } else {
        for (; l < s->nlevels; l++)
            if ((rc = fold(take_level(s, l, from, msg), &open)) != MPSCQ_EMPTY)
                goto out;
    }
    return open ? MPSCQ_EMPTY : MPSCQ_CLOSED;
out:
    *served_at = l;
    return rc;
}

/* A message was taken from level l: the lower levels waited once more. */
static void served(struct mpscq_set *s, unsigned l)
{
    s->lv[l].starve = 0;
    for (unsigned j = l + 1; j < s->nlevels; j++)
        s->lv[j].starve++;
}

/* take() with mpscq_set_fairness on. */
static __attribute__((noinline)) int take_fair(struct mpscq_set *s, mpscq_t **from, void **msg)
{
    int rc;
    /* A lower level that waited fair_k messages goes first, the highest
     * such first; found empty, it was not starving. */
    for (unsigned l = 1; l < s->nlevels; l++) {
        if (s->lv[l].starve < s->fair_k)
            continue;
        rc = take_level(s, l, from, msg);
        if (rc == MPSCQ_OK) {
            served(s, l);
            return rc;
        }
        if (rc != MPSCQ_EMPTY && rc != MPSCQ_CLOSED)
            return rc;
        s->lv[l].starve = 0;
    }
    unsigned l;
    rc = scan_levels(s, from, msg, &l);
    if (rc == MPSCQ_OK)
        served(s, l);
    return rc;
}

/* One message from the set, without waiting: OK, EMPTY, CLOSED (every
 * member drained), BUSY or NOMEM. */
static inline __attribute__((always_inline)) int take(struct mpscq_set *s, mpscq_t **from,
                                                      void **msg)
{
    if (MPSCQ_UNLIKELY(s->fair_k))
        return take_fair(s, from, msg);
    unsigned l;
    return scan_levels(s, from, msg, &l);
}

/* ------------------------------------------------------------------ */
/* Sleeping (design.md s. 15)                                           */

/* parked = 1 in every live member: the Dekker stores of wait.c, one per
 * member. */
static void park_all(struct mpscq_set *s)
{
    for (unsigned i = 0; i < s->n; i++)
        if (!s->m[i].drained)
            /* seq_cst: the consumer's side of each member's Dekker pair,
             * ordered before the re-check by set_barrier (as wait.c). */
            atomic_store_explicit(&s->m[i].q->parked, 1, memory_order_seq_cst);
}

static void unpark_all(struct mpscq_set *s)
{
    for (unsigned i = 0; i < s->n; i++)
        /* Relaxed: producers read it only to decide on a wake-up; a stale
         * 1 costs one spurious FUTEX_WAKE (as wait.c). */
        atomic_store_explicit(&s->m[i].q->parked, 0, memory_order_relaxed);
}

/* The exact sleep's barrier: one membarrier covers every member (it is
 * process-wide); members without it (need_fence) have producers that
 * fence themselves, and mpscq_wait_barrier then only fences. */
static void set_barrier(struct mpscq_set *s)
{
    const struct mpscq *bq = s->m[0].q;
    for (unsigned i = 0; i < s->n; i++)
        if (!s->m[i].q->need_fence) {
            bq = s->m[i].q;
            break;
        }
    mpscq_wait_barrier(bq);
}

/* futex_waitv(2) failed other than by a wake-up, a timeout or a signal
 * (ENOSYS: not in this kernel, EPERM: a seccomp filter, ...): every set
 * of the process polls from then on.  (Not static: the tests read it.) */
_Atomic int mpscq_set_waitv_missing;
#define waitv_missing mpscq_set_waitv_missing

/* 1: sleep_members polls. */
static int set_polls(void)
{
#ifdef MPSCQ_TEST_HOOKS
    /* Relaxed: set by the test before the set is used. */
    if (atomic_load_explicit(&mpscq_test_set_poll, memory_order_relaxed) == 1)
        return 1;
#endif
#ifdef MPSCQ_HAVE_WAITV
    /* Relaxed: a hint shared by the process's sets; a stale 0 costs one
     * more failing call. */
    return atomic_load_explicit(&waitv_missing, memory_order_relaxed);
#else
    return 1;
#endif
}

static int poll_member(struct mpscq_set *s, int val, uint64_t until)
{
    unsigned i = 0;
    while (i < s->n - 1 && s->m[i].drained)
        i++;
    uint64_t now = mpscq_mono_ns();
    uint64_t left = until > now ? until - now : 0;
    if (left > MPSCQ_SET_POLL_NS)
        left = MPSCQ_SET_POLL_NS;
    struct timespec rel = { 0, (long)left };
    return mpscq_futex_wait(&s->m[i].q->parked, val, &rel);
}

/* Sleep until a live member's parked word is not val (1, asleep: a
 * producer's wake-up or a close; 0, a nap: only a close) or
 * CLOCK_MONOTONIC passes `until` (UINT64_MAX: no timeout); without
 * futex_waitv, for at most MPSCQ_SET_POLL_NS.  Spurious returns are fine:
 * the caller looks again.  1 when it timed out. */
static int sleep_members(struct mpscq_set *s, int val, uint64_t until)
{
#ifdef MPSCQ_HAVE_WAITV
    if (!set_polls()) {
        struct futex_waitv w[MPSCQ_SET_MAX];
        unsigned nw = 0;
        for (unsigned i = 0; i < s->n; i++) {
            if (s->m[i].drained)
                continue;
            w[nw].val = (uint64_t)val;
            w[nw].uaddr = (uint64_t)(uintptr_t)&s->m[i].q->parked;
            /* Private, as the producers' FUTEX_WAKE_PRIVATE (wait.c). */
            w[nw].flags = FUTEX_32 | FUTEX_PRIVATE_FLAG;
            w[nw].__reserved = 0;
            nw++;
        }
        if (nw == 0)
            return 0;
        /* The kernel's 64-bit timespec, whatever the C library's is. */
        struct __kernel_timespec abs, *absp = NULL;
        if (until != UINT64_MAX) {
            abs.tv_sec = (long long)(until / 1000000000u);
            abs.tv_nsec = (long long)(until % 1000000000u);
            absp = &abs;
        }
        long r;
#ifdef MPSCQ_TEST_HOOKS
        /* 2: as under a seccomp filter that denies the call. */
        if (atomic_load_explicit(&mpscq_test_set_poll, memory_order_relaxed) == 2) {
            errno = EPERM;
            r = -1;
        } else
#endif
        /* Returns at once (EAGAIN) when a word is not 1 any more. */
        r = syscall(SYS_futex_waitv, w, nw, 0, absp, CLOCK_MONOTONIC);
        if (r >= 0 || errno == EAGAIN || errno == EINTR)
            return 0;
        if (errno == ETIMEDOUT)
            return 1;
        /* Relaxed: a hint, as in set_polls. */
        atomic_store_explicit(&waitv_missing, 1, memory_order_relaxed);
    }
#endif
    return poll_member(s, val, until);
}

/* The naps of mpscq_dequeue_wait (wait.c, design.md s. 7), over the set:
 * sleeps of the members' shortest nap_ns on every live parked word == 0,
 * which no producer ends (parked stays 0, so a producer's wake check
 * stays one load), a look after each, until a message (OK), every member
 * closed and drained (CLOSED), the deadline (TIMEOUT), or the members'
 * longest nap_idle_ns with nothing (EMPTY: the caller then sleeps until
 * woken).  mpscq_close of a member sets its parked word and wakes it. */
static int set_naps(struct mpscq_set *s, mpscq_t **fp, void **msg, uint64_t deadline)
{
    uint64_t nap = UINT64_MAX, idle = 0;
    for (unsigned i = 0; i < s->n; i++) {
        if (s->m[i].drained)
            continue;
        nap = s->m[i].q->nap_ns < nap ? s->m[i].q->nap_ns : nap;
        idle = s->m[i].q->nap_idle_ns > idle ? s->m[i].q->nap_idle_ns : idle;
    }
    mpscq_lower_timer_slack();
    uint64_t start = mpscq_mono_ns();
    for (;;) {
        uint64_t now = mpscq_mono_ns();
        if (now >= deadline) {
            int rc = take(s, fp, msg);
            return rc == MPSCQ_EMPTY ? MPSCQ_TIMEOUT : rc;
        }
        if (now - start >= idle)
            return MPSCQ_EMPTY;
        for (unsigned i = 0; i < s->n; i++)
            /* Relaxed: after a close (MPSCQ_PARKED_CLOSE) with a ticket
             * still unwritten, a nap would end at once; sleep until woken
             * instead (as wait.c). */
            if (!s->m[i].drained && atomic_load_explicit(&s->m[i].q->parked, memory_order_relaxed))
                return MPSCQ_EMPTY;
        /* As wait.c: 90 % of the nap less what naps overran lately (the
         * kernel's wake-up, timer slack), never beyond the deadline. */
        uint64_t aim = nap - nap / 10;
        uint64_t left = aim > s->nap_over + 1000 ? aim - s->nap_over : 1000;
        if (deadline - now < left)
            left = deadline - now;
        for (unsigned i = 0; i < s->n; i++)
            if (!s->m[i].drained)
                MPSCQ_STAT_ADD(s->m[i].q, st_naps, 1);
        MPSCQ_TEST_HOOK(MPSCQ_HOOK_NAP, s->m[0].q, left);
        int timed_out = sleep_members(s, 0, now + left);
        MPSCQ_TEST_HOOK(MPSCQ_HOOK_NAPPED, s->m[0].q, (uint64_t)timed_out);
        if (timed_out) {
            /* The overrun, smoothed, capped at the nap (as wait.c). */
            uint64_t took = mpscq_mono_ns() - now;
            uint64_t over = took > left ? took - left : 0;
            if (over > nap)
                over = nap;
            s->nap_over = (3 * s->nap_over + over) / 4;
        }
        int rc = take(s, fp, msg);
        if (rc != MPSCQ_EMPTY)
            return rc;
    }
}

static int set_wait(struct mpscq_set *s, mpscq_t **fp, void **msg, long long timeout_ns);

int mpscq_set_dequeue_wait(mpscq_set_t *s, mpscq_t **from, void **msg, long long timeout_ns)
{
    if (MPSCQ_UNLIKELY(!s || !msg || s->n == 0))
        return MPSCQ_INVAL;
    mpscq_t *f, **fp = from ? from : &f;
    int rc = take(s, fp, msg);
    if (rc != MPSCQ_EMPTY || timeout_ns == 0)
        return rc;
    return set_wait(s, fp, msg, timeout_ns);
}

/* take() for mpscq_wait_spin. */
struct spin_ctx {
    struct mpscq_set *s;
    mpscq_t **fp;
};

static int take_spin(void *ctx, void **msg)
{
    struct spin_ctx *c = ctx;
    return take(c->s, c->fp, msg);
}

/* Nothing was ready and the caller waits: spin, then sleep. */
static __attribute__((noinline)) int set_wait(struct mpscq_set *s, mpscq_t **fp, void **msg,
                                              long long timeout_ns)
{
    int rc;
    uint64_t deadline = mpscq_deadline(timeout_ns);
    /* Spin first, with the budget a queue's wait adapts (wait.c). */
    struct spin_ctx ctx = { s, fp };
    rc = mpscq_wait_spin(&s->spin_ns, timeout_ns, take_spin, &ctx, msg);
    if (rc != MPSCQ_EMPTY)
        return rc;
    rc = set_naps(s, fp, msg, deadline);
    if (rc != MPSCQ_EMPTY)
        return rc;
    /* Then sleep as mpscq_dequeue_wait sleeps (wait.c): the first round
     * light (no barrier, at most MPSCQ_LIGHT_PARK_NS: the bound on a
     * wake-up it can miss), the later ones exact. */
    int light = 1;
    for (;;) {
        park_all(s);
        uint64_t now = mpscq_mono_ns();
        if (!light && now < deadline) {
            MPSCQ_TEST_HOOK(MPSCQ_HOOK_BARRIER, s->m[0].q, 0);
            set_barrier(s);
        }
        rc = take(s, fp, msg);
        if (rc != MPSCQ_EMPTY) {
            unpark_all(s);
            return rc;
        }
        if (now >= deadline) {
            unpark_all(s);
            return MPSCQ_TIMEOUT;
        }
        uint64_t until = deadline;
        if (light && deadline - now > MPSCQ_LIGHT_PARK_NS)
            until = now + MPSCQ_LIGHT_PARK_NS;
        for (unsigned i = 0; i < s->n; i++)
            if (!s->m[i].drained)
                MPSCQ_STAT_ADD(s->m[i].q, st_parks, 1);
        MPSCQ_TEST_HOOK(MPSCQ_HOOK_PARK, s->m[0].q, (uint64_t)light);
        sleep_members(s, 1, until);
        if (light) {
            /* As wait.c: a light sleep that a producer ended finds its
             * message now and the next round stays light; one that found
             * nothing makes the next round exact. */
            rc = take(s, fp, msg);
            if (rc != MPSCQ_EMPTY) {
                unpark_all(s);
                return rc;
            }
            /* Polling, every round stays light: a poll ends within
             * MPSCQ_SET_POLL_NS anyway, which bounds a missed wake-up
             * as the light timeout does; a barrier per poll would
             * interrupt the producers thousands of times a second. */
            light = set_polls();
        }
    }
}
