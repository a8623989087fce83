/*
 * internal.h - the queue's shared state and the helpers every unit uses.
 * Not installed.  Layout rule: a field written on a hot path lives on a
 * cache line of its own, grouped with fields written by the same side.
 */
#ifndef MPSCQ_INTERNAL_H
#define MPSCQ_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>
#include <stddef.h>

#include "mpscq.h"
#include "annotate.h"

#define MPSCQ_CACHELINE 64
#define MPSCQ_ALIGNED   _Alignas(MPSCQ_CACHELINE)
#define MPSCQ_HIDDEN    __attribute__((visibility("hidden")))
/* The library's thread-local data: initial-exec, so that an access is one
 * %fs-relative load even in the shared library (no __tls_get_addr). */
#define MPSCQ_TLS_MODEL __attribute__((tls_model("initial-exec")))
#define MPSCQ_LIKELY(x)   __builtin_expect(!!(x), 1)
#define MPSCQ_UNLIKELY(x) __builtin_expect(!!(x), 0)
/* A path kept out of the hot code. */
#define MPSCQ_COLD __attribute__((cold, noinline))
/* A fast path inlined into each entry, whatever the compiler's size
 * heuristics say (one call less per message). */
#define MPSCQ_INLINE inline __attribute__((always_inline))

/* Bit 63 of the ticket counter: the queue is closed.  A producer whose
 * fetch-and-add returns a value with this bit keeps nothing. */
#define MPSCQ_TAIL_CLOSED (UINT64_C(1) << 63)
#define MPSCQ_TICKET_UNSET UINT64_MAX

/* mpscq_dequeue_wait's first sleep skips the membarrier and lasts at
 * most this long: the bound on a wake-up it can miss (design.md s. 7). */
#define MPSCQ_LIGHT_PARK_NS 1000000u
/* The consumer's futex word `parked`: 0 awake or napping (no producer
 * wakes it), 1 asleep until woken, MPSCQ_PARKED_CLOSE after mpscq_close
 * (which wakes it in either state: design.md s. 7). */
#define MPSCQ_PARKED_CLOSE 3
/* Its spin before sleeping: adaptive between these bounds (wait.c). */
#define MPSCQ_WAIT_SPIN_MIN_NS 128u
#define MPSCQ_WAIT_SPIN_MAX_NS 2048u
/* mpscq_ring_read_wait: the first pause after a read that found nothing,
 * before it looks again (ring_read.c says why). */
#define MPSCQ_RING_WAIT_FIRST_NS 2048u

/* The consumer's bounded wait for an issued ticket's slot write, before
 * it looks past it or says EMPTY (dequeue.c, catch_up; design.md s. 8). */
#define MPSCQ_CATCH_UP_NS 256u

/* Slot states (one byte per slot, next to the slot's value). */
#define MPSCQ_SLOT_EMPTY   0u
#define MPSCQ_SLOT_READY   1u  /* the value is written */
#define MPSCQ_SLOT_CONT    2u  /* the next slot is the same batch's next message */
#define MPSCQ_SLOT_FOLLOWS 4u  /* batch interior: taken only right after its predecessor */
#define MPSCQ_SLOT_TAKEN   8u  /* the consumer's mark: taken from the middle of a run
                                * of passed slots (dequeue.c, take_pend) */
#define MPSCQ_SLOT_SKIP   16u  /* alone: the ticket was refused (bounded, FULL);
                                * the consumer passes it, no message */

/* Counting atomic read-modify-writes, for the wait-freedom test only
 * (built with -DMPSCQ_COUNT_RMW into a separate test library). */
#ifdef MPSCQ_COUNT_RMW
extern _Thread_local unsigned long mpscq_rmw_count;
#define MPSCQ_RMW(n) (mpscq_rmw_count += (n))
#else
#define MPSCQ_RMW(n) ((void)0)
#endif

/* Test hooks, compiled only into the test library (-DMPSCQ_TEST_HOOKS):
 * stop a producer between its ticket and its slot write, and make CAS
 * loops fail on demand. */
#ifdef MPSCQ_TEST_HOOKS
struct mpscq;
enum {
    MPSCQ_HOOK_BEFORE_TICKET,  /* producer: hazard ALL stored, no ticket yet */
    MPSCQ_HOOK_AFTER_TICKET,   /* producer: ticket taken, hint not read yet
                                * (hazard ALL), slot not written */
    MPSCQ_HOOK_AFTER_HINT,     /* producer: hint read, hazard narrowed to it,
                                * slot not written */
    MPSCQ_HOOK_BEFORE_PUBLISH, /* batch producer: interior written, head not */
    MPSCQ_HOOK_CONSUMER_SCAN,  /* consumer: passed slots re-read, scan next */
    MPSCQ_HOOK_POOL_POP,       /* popper: hazard on the pool's top (ticket = top)
                                * confirmed, top->pool_next not read yet */
    MPSCQ_HOOK_REGISTRY_LOCKED,/* create: the registry lock is held */
    MPSCQ_HOOK_PARK,           /* consumer: about to sleep (ticket = 1: light) */
    MPSCQ_HOOK_BARRIER,        /* consumer: the exact sleep's barrier */
    MPSCQ_HOOK_FORK_PREPARE,   /* fork(): before the registry lock is taken */
    MPSCQ_HOOK_SKIP_MARKED,    /* refused producer: a slot marked (ticket) */
    MPSCQ_HOOK_NAP,            /* consumer: about to nap (ticket = ns) */
    MPSCQ_HOOK_NAPPED,         /* consumer: nap over (ticket = 1: timed out) */
    MPSCQ_HOOK_SPACE_RETRIED,  /* mpscq_enqueue_wait: armed, its retry found
                                * the queue full, the futex wait is next */
    MPSCQ_HOOK_SPACE_WAKE,     /* consumer: a waiting producer seen, about to
                                * wake it (ticket = dequeued) */
    MPSCQ_HOOK_SPACE_SLEPT,    /* mpscq_enqueue_wait: its futex wait is over
                                * (ticket = 1: timed out) */
    MPSCQ_HOOK_CONSUMER_ENTER, /* consumer call (C): mark stored, the queue's
                                * name of its consumer not read yet */
    MPSCQ_HOOK_CONSUMER_TAKE,  /* taker: its name stored, the old consumer's
                                * mark not read yet */
    MPSCQ_HOOK_MANY_SCANNED,   /* many consumers: a slot not takeable passed
                                * (ticket), the next slot not read yet */
    MPSCQ_HOOK_MANY_CLAIMED,   /* many consumers: ticket claimed, its message
                                * not returned yet */
    MPSCQ_HOOK_MANY_ARM,       /* many consumers, dequeue_wait: a round
                                * (ticket) starts, parked not set yet */
    MPSCQ_HOOK_MANY_WOKEN,     /* many consumers, dequeue_wait: the futex
                                * wait is over, no look yet (ticket = 1: it
                                * timed out) */
    MPSCQ_HOOK_MANY_PROTECTED, /* many consumers: hazard on cseg published,
                                * chead read (ticket), no state read yet */
    MPSCQ_HOOK_MANY_RECLAIM,   /* many consumers: the recycler's flag held,
                                * cseg not moved yet (ticket = chead) */
    MPSCQ_HOOK_MANY_YIELD,     /* many consumers: a window of standing
                                * aside for the hot consumer spun, its word
                                * not read again yet (ticket = the
                                * window's length in ns) */
    MPSCQ_HOOK_REC_LINKING,    /* a thread's first call: its new record is
                                * the list's head, not linked to the older
                                * ones yet (ticket = 0) */
    MPSCQ_HOOK_CLOSE_GAP,      /* mpscq_close: the closed bit set on tail,
                                * close_ticket not stored yet (ticket = the
                                * close ticket) */
    MPSCQ_HOOK_RING_PRECHECKED,/* ring producer: the tail's chunk found
                                * installed, no claim yet (q NULL, ticket =
                                * the tail it read) */
    MPSCQ_HOOK_RING_CLAIMED,   /* ring producer: fetch-and-add done, the
                                * chunk's map word not read yet (q NULL,
                                * ticket = the claimed position) */
    MPSCQ_HOOK_RING_PARK,      /* ring read_wait: `sleeping` stored, the
                                * last look before FUTEX_WAIT not made yet
                                * (q NULL, ticket = the futex value) */
    MPSCQ_HOOK_RING_CLOSING,   /* mpscq_ring_close: bit 63 set on tail,
                                * close_pos not stored yet (q NULL, ticket
                                * = the close position) */
    MPSCQ_HOOK_RING_CATCH_UP,  /* ring consumer: stopped at an uncommitted
                                * claim, its catch-up spin done, the second
                                * look not made yet (q NULL, ticket = head) */
    MPSCQ_HOOK_RING_SPACE_WAIT,/* ring write_wait: counted as waiting, its
                                * last try said FULL, FUTEX_WAIT not called
                                * yet (q NULL, ticket = the futex value) */
    MPSCQ_HOOK_RING_CONSUMER_IN, /* ring consumer call: the role taken, no
                                * consumer state read yet (q NULL, ticket 0) */
    MPSCQ_HOOK_RING_CONSUMER_TAKEOVER, /* ring consumer call: the role's
                                * owner found dead, its place not taken yet
                                * (q NULL, ticket = the owner word) */
    MPSCQ_HOOK_SPARE_ALLOCATED /* producer out of spares: a segment from
                                * the allocator, prepared (ticket 0) */
};
extern void (*mpscq_test_hook)(int where, const struct mpscq *q, uint64_t ticket);
extern _Atomic long mpscq_test_cas_failures;
/* Many consumers: the clock of the hot-consumer measurement (NULL: the
 * monotonic clock).  Tests make a consumer hot or not with it. */
extern uint64_t (*mpscq_test_hot_clock)(void);
/* Queue sets (set.c): 1, poll as without futex_waitv; 2, futex_waitv
 * fails with EPERM (as under a seccomp filter). */
extern _Atomic int mpscq_test_set_poll;
/* Calls of mpscq_wake_consumer (a producer found the consumer asleep). */
extern _Atomic unsigned long mpscq_test_producer_wakes;
/* Work the consumer does on its passed set (entries visited or moved),
 * counted per thread like mpscq_rmw_count. */
extern _Thread_local unsigned long mpscq_pend_work;
#define MPSCQ_PEND_WORK(n) (mpscq_pend_work += (n))
/* Steps a producer took back along prev (its hint was past its ticket). */
extern _Atomic unsigned long mpscq_back_steps;
#define MPSCQ_TEST_BACK_STEP() \
    atomic_fetch_add_explicit(&mpscq_back_steps, 1, memory_order_relaxed)
#define MPSCQ_TEST_HOOK(where, q, t) \
    do { if (mpscq_test_hook) mpscq_test_hook((where), (q), (t)); } while (0)
#define MPSCQ_TEST_FORCE_CAS_FAIL() \
    (atomic_load_explicit(&mpscq_test_cas_failures, memory_order_relaxed) > 0 && \
     atomic_fetch_sub_explicit(&mpscq_test_cas_failures, 1, memory_order_relaxed) > 0)
#else
#define MPSCQ_TEST_HOOK(where, q, t) ((void)0)
#define MPSCQ_TEST_FORCE_CAS_FAIL() 0
#define MPSCQ_PEND_WORK(n) ((void)0)
#define MPSCQ_TEST_BACK_STEP() ((void)0)
#endif

struct mpscq_segment {
    /* Tickets [id << shift, (id + 1) << shift).  Written by the producer
     * that links the segment before the release CAS that publishes it. */
    uint64_t id;
    _Atomic(struct mpscq_segment *) next;      /* list link, set once */
    _Atomic(struct mpscq_segment *) pool_next; /* pool link, read by stale poppers */
    /* The segment before it in the list (id - 1), written with id before
     * the link is published: a producer whose hint is already past its
     * ticket walks back along it (design.md s. 4). */
    struct mpscq_segment *prev;
    /* id << shift: its first ticket.  Ticket t is in this segment when
     * t - base < nslots (unsigned), and t - base is then its slot. */
    uint64_t base;
    char pad[MPSCQ_CACHELINE - 40];
    /* followed by ceil(nslots / 7) lines of 64 bytes: see mpscq_slot_val */
};

/* The slots.  Line l of a segment's slot area holds slots 7l .. 7l + 6:
 * their 7 values (56 bytes), then their 7 state bytes, then one unused
 * byte.  So a message's value and state share one cache line: a producer
 * writes one line per message and the consumer reads one (with a value
 * array and a state array apart it was two: doc/performance.md, "One
 * line per message").  9.14 bytes a slot.
 *
 * Slot i is on line l = i / 7 (by a multiply: exact for i < 1.33 * 2^30,
 * and MPSCQ_SEGMENT_SLOTS_MAX is 2^20); its value is at byte 64 l +
 * 8 (i - 7 l) = 8 (i + l) and its state at 64 l + 56 + (i - 7 l) = 57 l +
 * i + 56 of the slot area.  The assembly computes the same (enqueue.asm,
 * dequeue.asm). */
#define MPSCQ_LINE_SLOTS 7u
#define MPSCQ_LINE_STATES 56u /* the state bytes' offset in a line */
#define MPSCQ_DIV7_MUL 613566757u /* ceil(2^32 / 7) */
_Static_assert(MPSCQ_SEGMENT_SLOTS_MAX < (1u << 30), "slot / 7 by multiply");
_Static_assert(MPSCQ_LINE_STATES == MPSCQ_LINE_SLOTS * sizeof(void *) &&
                   MPSCQ_LINE_STATES + MPSCQ_LINE_SLOTS < MPSCQ_CACHELINE,
               "7 values, then their states, in one line");

static inline size_t mpscq_slot_line(size_t i)
{
    return (size_t)(((uint64_t)i * MPSCQ_DIV7_MUL) >> 32);
}

/* The lines of a segment of n slots. */
static inline size_t mpscq_slot_lines(size_t n)
{
    return (n + MPSCQ_LINE_SLOTS - 1) / MPSCQ_LINE_SLOTS;
}

/* Slot i as a position: its line and its index in the line.  Also a
 * walk over consecutive slots of one segment with no division per slot
 * (the batch paths): mpscq_slot_at, then mpscq_cur_next. */
struct mpscq_slot_cur {
    char *line;
    size_t pos;
};

static inline struct mpscq_slot_cur mpscq_slot_at(struct mpscq_segment *s, size_t i)
{
    size_t l = mpscq_slot_line(i);
    struct mpscq_slot_cur c = { (char *)(s + 1) + MPSCQ_CACHELINE * l,
                                i - MPSCQ_LINE_SLOTS * l };
    return c;
}

static inline void **mpscq_cur_val(const struct mpscq_slot_cur *c)
{
    return (void **)(void *)c->line + c->pos;
}

static inline _Atomic unsigned char *mpscq_cur_state(const struct mpscq_slot_cur *c)
{
    return (_Atomic unsigned char *)(void *)(c->line + MPSCQ_LINE_STATES + c->pos);
}

static inline void mpscq_cur_next(struct mpscq_slot_cur *c)
{
    if (++c->pos == MPSCQ_LINE_SLOTS) {
        c->pos = 0;
        c->line += MPSCQ_CACHELINE;
    }
}

/* The same addresses as mpscq_slot_at's, in the closed forms above:
 * gcc derives the value's and the state's from one multiply this way
 * (through the cursor it computes the line twice: 8 instructions more
 * per enqueue+dequeue pair).  test_slot_layout checks that both agree. */
static inline void **mpscq_slot_val(struct mpscq_segment *s, size_t i)
{
    return (void **)(void *)((char *)(s + 1) + sizeof(void *) * (i + mpscq_slot_line(i)));
}

static inline _Atomic unsigned char *mpscq_slot_state(struct mpscq_segment *s, size_t i)
{
    return (_Atomic unsigned char *)(void *)((char *)(s + 1) +
                                             (MPSCQ_CACHELINE - MPSCQ_LINE_SLOTS) *
                                                 mpscq_slot_line(i) +
                                             i + MPSCQ_LINE_STATES);
}

/* The 8 state bytes (7 and the spare) of line l. */
static inline _Atomic unsigned char *mpscq_line_states(struct mpscq_segment *s, size_t l)
{
    return (_Atomic unsigned char *)(void *)((char *)(s + 1) + MPSCQ_CACHELINE * l +
                                             MPSCQ_LINE_STATES);
}

/* Helgrind: a segment's state bytes are C11 atomics (annotate.h). */
static inline void mpscq_seg_hg_states(struct mpscq_segment *s, size_t nslots)
{
    for (size_t l = 0, n = mpscq_slot_lines(nslots); l < n; l++)
        MPSCQ_HG_ATOMIC(mpscq_line_states(s, l), MPSCQ_LINE_SLOTS);
    (void)s;
}

/* The admission bound of an unbounded queue (capacity.h): the closed bit,
 * so that one compare of the ticket catches a closed queue and a refused
 * ticket alike (a bounded bound is far below it). */
#define MPSCQ_ADMIT_ALL MPSCQ_TAIL_CLOSED

/* A run of consecutive tickets [idx, idx + n) that the consumer passed
 * while they were not takeable; seg holds idx.  A batch overtaken while
 * it is being written is one run, so taking its messages one after the
 * other costs O(1) each (design.md s. 8). */
struct mpscq_pending {
    struct mpscq_segment *seg;
    uint64_t idx;
    uint64_t n;
    /* Tickets idx + 1 .. idx + known are known batch interiors (seen
     * FOLLOWS, or following a slot seen with CONT): never takeable on
     * their own, so a re-scan of the run skips them. */
    uint64_t known;
    /* The segment of ticket idx + known when known > 0 (NULL: find it
     * from seg).  A front step keeps both: idx + 1 and known - 1 name the
     * same ticket. */
    struct mpscq_segment *kseg;
};

struct mpscq_hp_rec;
struct mpscq_hp_leaf;
struct mpscq_consumer_mark;
/* Top level of the per-queue directory from thread slot to hazard record
 * (hazard.h): MPSCQ_DIR_TOP leaves of MPSCQ_DIR_LEAF records each. */
#define MPSCQ_DIR_TOP 256u

/* 16-byte pool head: (pointer, tag) changed together by CMPXCHG16B. */
struct mpscq_pool_head {
    _Atomic(struct mpscq_segment *) ptr;
    _Atomic uint64_t tag;
} __attribute__((aligned(16)));

struct mpscq {
    /* ---- read-mostly: set at create ---- */
    uint64_t qid;             /* unique per queue, validates thread caches */
    unsigned shift;           /* log2(nslots) */
    size_t nslots;
    size_t mask;
    size_t seg_bytes;
    size_t seg_map_bytes;     /* != 0: segments are mmap'ed, this long (segment.c) */
    long pool_high;           /* the pool's bound once the consumer caught up (segment.h) */
    long pool_work;           /* its bound while the consumer works (segment.h) */
    size_t capacity;          /* 0 = unbounded */
    int preallocated;         /* mpscq_config.preallocate (queue.c, producer.c) */
    uint64_t release_batch;   /* bounded: dequeues the consumer publishes at once */
    int many;                 /* mpscq_config.consumers == MPSCQ_CONSUMERS_MANY:
                               * consumer calls go to consumers.c */

    void (*log_fn)(int, const char *, void *);
    void *log_arg;
    void *(*alloc_fn)(size_t, void *);
    void (*free_fn)(void *, size_t, void *);
    void *alloc_arg;
    struct mpscq *live_next;  /* registry of live queues (hazard.c) */
    /* thread slot -> hazard record (hazard.c); leaves set once, by CAS */
    _Atomic(struct mpscq_hp_leaf *) dir[MPSCQ_DIR_TOP];

    /* ---- producers' ticket counter: written by every enqueue ---- */
    MPSCQ_ALIGNED _Atomic uint64_t tail;

    /* ---- read by every enqueue, written once per segment ---- */
    MPSCQ_ALIGNED _Atomic(struct mpscq_segment *) hint;
    _Atomic int parked;       /* futex word: 1 while the consumer sleeps */
    int need_fence;           /* no membarrier: producers fence before the wake
                               * check.  Right after parked, set at create: the
                               * asm tests both with one 8-byte load (wait.h). */
    _Atomic uint64_t close_ticket; /* tickets below it were taken before close */
    _Atomic(struct mpscq_hp_rec *) records; /* hazard records, push-only list */

    /* ---- bounded mode: admission (capacity.h, design.md s. 6).  Read by
     * every bounded enqueue; `released` is written by the consumer once
     * per release_batch dequeues, when it finds nothing to take and when
     * it wakes a waiter (and by a producer waiting for a place, which
     * pulls it up to `dequeued`), `rejected` by refused producers only,
     * the two words of waiting (enqueue_wait.c, design.md s. 6.3) only
     * when a producer blocks. */
    MPSCQ_ALIGNED _Atomic uint64_t released; /* dequeues published (absolute) */
    _Atomic uint64_t rejected;               /* tickets refused (FULL) */
    _Atomic int space_armed;  /* 1: a producer may wait in mpscq_enqueue_wait */
    _Atomic int space_seq;    /* futex word of waiting producers: the
                               * consumer and mpscq_close bump it to wake them */

    /* ---- the single consumer's state (no other thread writes it) ---- */
    /* The consumer's mark (consumer.h), read by every consumer call,
     * written by a taker only; `taking` serializes takers. */
    MPSCQ_ALIGNED _Atomic(struct mpscq_consumer_mark *) consumer;
    _Atomic int taking;
    uint64_t head;                    /* every ticket below it is handled */
    uint64_t scan;                    /* next ticket never looked at */
    uint64_t limit;                   /* tickets below it were issued (last reading) */
    uint64_t idle_limit;              /* limit at the last EMPTY (dequeue.c) */
    uint64_t last;                    /* ticket taken last */
    int last_cont;                    /* it has MPSCQ_SLOT_CONT: last + 1 must come next */
    int closed_seen;                  /* limit is the final close ticket */
    struct mpscq_segment *scan_seg;   /* holds `scan`, or the last linked one */
    struct mpscq_segment *oldest;     /* first segment not yet recycled */
    struct mpscq_pending *pend;       /* runs passed, not handled, ascending */
    /* The fast paths' one test (fastpath.c, dequeue.asm, take_run):
     * non-zero when runs are passed or a message is peeked, either of
     * which sends a dequeue to the slow path. */
    union {
        uint64_t gate;
        struct {
            uint32_t npend;           /* runs, not tickets (pend_reserve caps it) */
            uint32_t peeked;          /* 1: mpscq_peek holds peek_msg (peek.c) */
        };
    };
    size_t cap_pend;
    void *peek_msg;                   /* the peeked message, next to deliver */
    int peeking;                      /* inside mpscq_peek: a take is not a dequeue yet */
    struct mpscq_pending pend_inline[16];
    _Atomic uint64_t dequeued;        /* consumer stores (release), others read */
    uint64_t release_debt;            /* bounded: dequeues not yet published */
    unsigned wait_spin_ns;            /* dequeue_wait's spin budget (adaptive) */
    uint64_t nap_ns;                  /* dequeue_wait's nap (set at create) */
    uint64_t nap_idle_ns;             /* naps with nothing before it sleeps until woken */
    uint64_t nap_over;                /* naps' recent overrun, smoothed (wait.c) */

    /* ---- many-consumer mode (consumers.c, design.md s. 16): written by
     * consumers only.  Every ticket below chead is taken or refused;
     * cseg holds a ticket at or below chead and is the consumers' entry
     * point to the list (only the holder of `reclaiming` moves it). ---- */
    MPSCQ_ALIGNED _Atomic uint64_t chead;
    _Atomic(struct mpscq_segment *) cseg;
    _Atomic int reclaiming;   /* 1 while a consumer recycles (oldest, the pool trim) */
    _Atomic int reclaim_left; /* the last recycling stopped at a protected segment */
    _Atomic int csleepers;    /* consumers inside the futex sleep of mpscq_dequeue_wait */
    _Atomic uint64_t cidle;   /* the limit at the last EMPTY (the pool's idle bound) */
    /* The hot consumer (consumers.c): 0, or its id, its take count and
     * bit 0 set.  Written by that consumer at each take, alone on its
     * line: consumers that wait for it read it once per window. */
    MPSCQ_ALIGNED _Atomic uint64_t chot;

    /* ---- pool of recycled segments ---- */
    MPSCQ_ALIGNED struct mpscq_pool_head pool;
    _Atomic long pool_count;    /* signed: a pop may count down before the push counts up */
    _Atomic long pool_keep;     /* kept when idle: MPSCQ_POOL_MAX, more when preallocated */

    /* ---- slow-path statistics ---- */
    MPSCQ_ALIGNED _Atomic unsigned long long st_full, st_closed, st_nomem,
        st_alloc, st_recycled, st_freed, st_cas_fail, st_parks, st_naps, st_waits,
        st_busy;
    _Atomic int warned[2];    /* contention warning given: [0] producers, [1] consumer */
    _Atomic(struct mpscq_set *) set; /* the set it belongs to, or NULL (set.c) */
};

/* Relaxed increment of a statistics counter (slow paths only). */
#define MPSCQ_STAT_ADD(q, field, n) \
    atomic_fetch_add_explicit(&(q)->field, (n), memory_order_relaxed)

/* alloc.c: the default allocator (posix_memalign, 64-byte aligned) and
 * the calls through the configured one. */
MPSCQ_HIDDEN void *mpscq_default_alloc(size_t size, void *arg);
MPSCQ_HIDDEN void mpscq_default_free(void *p, size_t size, void *arg);
MPSCQ_HIDDEN void *mpscq_alloc(const struct mpscq *q, size_t size);
MPSCQ_HIDDEN void mpscq_free(const struct mpscq *q, void *p, size_t size);

/* dequeue.c: one message handed to the consumer's caller: counted in
 * dequeued, its place freed (bounded). */
MPSCQ_HIDDEN void mpscq_count_dequeue(struct mpscq *q);

/* set.c: 1 once futex_waitv failed other than by a wake-up, a timeout or
 * a signal (ENOSYS, EPERM, ...): sets poll from then on. */
extern _Atomic int mpscq_set_waitv_missing MPSCQ_HIDDEN;
/* set.c: mpscq_destroy's: a queue still in a set leaves it. */
MPSCQ_HIDDEN void mpscq_set_leave(struct mpscq *q);

/* queue.c */
MPSCQ_HIDDEN void mpscq_log(const struct mpscq *q, int level, const char *msg);
/* Log the 1000-consecutive-CAS-failures warning, once per side per queue. */
MPSCQ_HIDDEN void mpscq_warn_contention(struct mpscq *q, int consumer);
/* enqueue.c: enqueue with a known hazard record (the plain calls and the producer
 * handles of producer.c share them).  mpscq_enqueue_prepared: one
 * message, any case; mpscq_enqueue_batch_check: the checks of a batch
 * that need no record (MPSCQ_OK to go on); mpscq_enqueue_batch_rec: the
 * rest of a batch of n >= 1 checked messages. */
MPSCQ_HIDDEN int mpscq_enqueue_prepared(struct mpscq *q, struct mpscq_hp_rec *r, void *msg);
MPSCQ_HIDDEN int mpscq_enqueue_batch_check(struct mpscq *q, size_t n);
MPSCQ_HIDDEN int mpscq_enqueue_batch_rec(struct mpscq *q, struct mpscq_hp_rec *r,
                                         void *const *msgs, size_t n);

#endif /* MPSCQ_INTERNAL_H */
