/*
 * mpscq.h - libmpscq: a wait-free multi-producer, single-consumer queue.
 *
 * Messages are opaque `void *` values (NULL included) stored by reference.
 * The queue is a linked list of fixed-size segments indexed by a 64-bit
 * ticket taken with one fetch-and-add; drained segments are recycled
 * through an ABA-safe pool and protected from early reuse by hazard
 * pointers.  See doc/design.md for the algorithm and its proofs, and
 * doc/man3/ for one manual page per function.
 *
 * Synchronization table (X: may run concurrently with the column's call
 * on the same queue, -: must not):
 *
 *                     enqueue*  dequeue*  close  size/stats  destroy
 *   mpscq_enqueue*       X         X        X        X          -
 *   mpscq_dequeue*       X         -        X        X          -
 *   mpscq_close          X         X        X        X          -
 *   mpscq_size/stats     X         X        X        X          -
 *   mpscq_destroy        -         -        -        -          -
 *
 * "enqueue*" is mpscq_enqueue and mpscq_enqueue_batch (any thread, any
 * number at once); "dequeue*" is mpscq_dequeue, mpscq_dequeue_batch and
 * mpscq_dequeue_wait, called by one consumer thread at a time.
 *
 * Copyright (c) 2026 libmpscq authors.  MIT licence (see COPYING).
 */
#ifndef MPSCQ_H
#define MPSCQ_H

#include <stddef.h>

/* The version of this header.  mpscq_version() gives the library's, which
 * may be newer (never older in a correct installation).  The ABI policy
 * is in README ("Versions and ABI"). */
#define MPSCQ_VERSION_MAJOR 0
#define MPSCQ_VERSION_MINOR 5
#define MPSCQ_VERSION_PATCH 0
#define MPSCQ_VERSION_STRING "0.5.0"
/* One number for #if tests: 0xMMmmpp. */
#define MPSCQ_VERSION_NUMBER \
    ((MPSCQ_VERSION_MAJOR << 16) | (MPSCQ_VERSION_MINOR << 8) | MPSCQ_VERSION_PATCH)

/* MPSCQ_API marks the exported functions: the library is compiled with
 * hidden visibility and a symbol version script, so that its shared
 * object exports exactly these. */
#if defined(__GNUC__) || defined(__clang__)
#define MPSCQ_API __attribute__((visibility("default")))
#else
#define MPSCQ_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque queue handle. */
typedef struct mpscq mpscq_t;

/* Status codes.  MPSCQ_OK is 0, every other value is distinct and
 * positive, so `if (mpscq_enqueue(q, m))` tests for failure. */
enum mpscq_status {
    MPSCQ_OK = 0,   /* success */
    MPSCQ_EMPTY,    /* dequeue: nothing ready now */
    MPSCQ_FULL,     /* enqueue: bounded queue has no free place (up to
                     * capacity/8 - 1, at most 63, dequeues may not be
                     * published by the consumer yet) */
    MPSCQ_CLOSED,   /* enqueue after close; dequeue after close and drain */
    MPSCQ_TIMEOUT,  /* a waiting call's timeout expired */
    MPSCQ_NOMEM,    /* an allocation failed; nothing was changed */
    MPSCQ_INVAL,    /* bad argument; nothing was changed */
    MPSCQ_BUSY,     /* a consumer call while another thread is inside one
                     * (asleep in a waiting call too); nothing was changed */
    MPSCQ_EXIST     /* mpscq_ring_create: a region of that name exists */
};

/* Levels passed to mpscq_config.log_fn. */
enum { MPSCQ_LOG_DEBUG, MPSCQ_LOG_INFO, MPSCQ_LOG_WARN, MPSCQ_LOG_ERROR };

/* Limits checked by mpscq_create (MPSCQ_INVAL outside them). */
#define MPSCQ_SEGMENT_SLOTS_MIN     2u
#define MPSCQ_SEGMENT_SLOTS_MAX     (1u << 20)
#define MPSCQ_SEGMENT_SLOTS_DEFAULT 1024u
#define MPSCQ_CAPACITY_MAX          ((size_t)1 << 48)

typedef struct mpscq_config {
    size_t capacity;       /* 0 = unbounded; else at most this many queued
                            * messages (1 .. MPSCQ_CAPACITY_MAX) */
    size_t segment_slots;  /* 0 = MPSCQ_SEGMENT_SLOTS_DEFAULT; else a power
                            * of two in [MPSCQ_SEGMENT_SLOTS_MIN,
                            * MPSCQ_SEGMENT_SLOTS_MAX] */
    void (*log_fn)(int level, const char *message, void *arg);
                           /* NULL = write warnings and errors to stderr */
    void *log_arg;
    void *(*alloc_fn)(size_t size, void *arg);
                           /* NULL = the library's allocator (posix_memalign,
                            * and mmap for segments, so that a drained
                            * burst's memory returns to the system);
                            * a custom one must return 64-byte aligned memory
                            * or NULL; set alloc_fn and free_fn together */
    void (*free_fn)(void *ptr, size_t size, void *arg);
    void *alloc_arg;
    unsigned long long nap_ns;
                           /* mpscq_dequeue_wait between messages: the
                            * consumer naps this long at a time, and no
                            * producer pays a system call to wake it, so a
                            * message waits at most about this long (plus
                            * the kernel's wake-up time) while messages
                            * keep coming.  0 = MPSCQ_NAP_DEFAULT_NS (latency
                            * first); larger = less CPU.  After
                            * max(1 ms, 8 naps) with nothing it sleeps
                            * until a producer or mpscq_close wakes it. */
    unsigned preallocate;  /* non-zero, bounded queues only: allocate at
                            * create all the segments the queue needs
                            * (2 * ceil(capacity / segment_slots) + 4), and
                            * a spare per producer handle at
                            * mpscq_producer_create, and keep them: no
                            * enqueue through a handle and no dequeue then
                            * calls alloc_fn (doc/design.md s. 5; with
                            * many consumers, a consumer thread's first
                            * call still allocates its record).  The
                            * queue's memory then stays at that size. */
    unsigned consumers;    /* 0 or 1: one consumer thread at a time (another
                            * thread's consumer call meanwhile is
                            * MPSCQ_BUSY); MPSCQ_CONSUMERS_MANY: any number
                            * of threads may dequeue at once, each message
                            * going to exactly one of them (mpscq_peek and
                            * mpscq_set_add then say MPSCQ_INVAL;
                            * mpscq_create(3)).  Other values: INVAL. */
} mpscq_config;

/* mpscq_config.consumers: several consumer threads on one queue. */
#define MPSCQ_CONSUMERS_MANY 0xffffffffu

/* The default nap of mpscq_dequeue_wait (mpscq_config.nap_ns = 0). */
#define MPSCQ_NAP_DEFAULT_NS 34000ull
/* The longest nap_ns mpscq_create accepts (1 s). */
#define MPSCQ_NAP_MAX_NS 1000000000ull

/* Counters returned by mpscq_stats.  Producers update them only on slow
 * paths (rejection, segment change), so reading them costs the hot path
 * nothing. */
struct mpscq_stats {
    unsigned long long enqueued;           /* messages accepted */
    unsigned long long dequeued;           /* messages handed to the consumer */
    unsigned long long full_rejections;    /* MPSCQ_FULL returned */
    unsigned long long closed_rejections;  /* MPSCQ_CLOSED returned to producers */
    unsigned long long nomem_failures;     /* MPSCQ_NOMEM returned */
    unsigned long long segments_allocated; /* fresh segments from alloc_fn */
    unsigned long long segments_recycled;  /* segments taken from the pool */
    unsigned long long segments_freed;     /* segments given back to free_fn */
    unsigned long long cas_failures;       /* failed compare-and-swaps */
    unsigned long long consumer_parks;     /* sleeps until woken in dequeue_wait */
    unsigned long long consumer_naps;      /* naps in dequeue_wait (mpscq_config.nap_ns) */
    unsigned long long producer_waits;     /* mpscq_enqueue_wait calls that had to wait */
    unsigned long long consumer_busy;      /* MPSCQ_BUSY returned (a second consumer thread) */
};

/* Extensible structures.  mpscq_config and struct mpscq_stats are
 * allocated by the caller and may gain fields at the end in later minor
 * versions.  So that a program compiled against this header keeps working
 * with a newer library, the calls that take them pass their size: the
 * inline wrappers below (what programs call) pass sizeof as compiled, and
 * the library reads or writes only that many bytes.  Bindings that cannot
 * use inline functions call the _sized functions with the size of the
 * structure they were written for. */

/* mpscq_config_init: fill *cfg with the defaults (unbounded, default
 * segment size, stderr logging, the library allocator).
 * Thread contract: none (touches only *cfg).  NULL is ignored. */
MPSCQ_API void mpscq_config_init_sized(mpscq_config *cfg, size_t size);
static inline void mpscq_config_init(mpscq_config *cfg)
{
    mpscq_config_init_sized(cfg, sizeof *cfg);
}

/* mpscq_create: allocate a queue and store it in *q.
 * cfg may be NULL for the defaults; it is copied, not retained.
 * Returns MPSCQ_OK, MPSCQ_INVAL (q NULL, segment_slots not a power of two
 * or out of range, capacity above MPSCQ_CAPACITY_MAX, only one of
 * alloc_fn/free_fn set, preallocate on an unbounded queue, alloc_fn
 * returned memory that is not 16-byte aligned; with mpscq_create_sized: a size smaller than this library's
 * first mpscq_config, or a larger one whose bytes beyond the fields this
 * library knows are not all zero) or MPSCQ_NOMEM.  *q is untouched on
 * failure. */
MPSCQ_API int mpscq_create_sized(mpscq_t **q, const mpscq_config *cfg, size_t size);
static inline int mpscq_create(mpscq_t **q, const mpscq_config *cfg)
{
    return mpscq_create_sized(q, cfg, sizeof *cfg);
}

/* mpscq_destroy: call drop(msg, arg) on every message still queued (in
 * queue order; drop may be NULL), then free all memory of q.
 * Thread contract: no other call on q may be running or follow.
 * NULL q is ignored. */
MPSCQ_API void mpscq_destroy(mpscq_t *q, void (*drop)(void *msg, void *arg), void *arg);

/* mpscq_enqueue: append msg (any value, NULL included) to q.
 * Thread contract: any number of concurrent producers.
 * Ordering: release; the consumer that dequeues msg sees every write the
 * producer made before the call.  Messages of one thread come out in the
 * order they went in; the queue is linearizable.
 * Progress: wait-free, no lock; 1 atomic read-modify-write in the
 * common case, bounded or not (the ticket; it also fences the
 * hazard-pointer publish); at most 9 with the default segment size and
 * fewer than 1023 enqueues in flight.  In general 3 + L (+1 when refused,
 * +4 to refill a spare segment), L <= (T + 1) / N + 2, with T tickets
 * held by enqueues in flight and N = segment_slots (doc/design.md s. 2).  A
 * thread's first call on q and a call that must supply a fresh segment
 * may call alloc_fn; when more than N tickets are in flight ahead of it
 * and alloc_fn fails, the call retries alloc_fn until it succeeds (it
 * holds a ticket the consumer will read).  Not async-signal-safe.
 * Returns MPSCQ_OK, MPSCQ_FULL, MPSCQ_CLOSED, MPSCQ_NOMEM (nothing was
 * enqueued, q is unchanged and usable) or MPSCQ_INVAL (q NULL). */
MPSCQ_API int mpscq_enqueue(mpscq_t *q, void *msg);

/* mpscq_enqueue_batch: append msgs[0..n-1] all or nothing.  The n
 * messages take n consecutive tickets and come out contiguous and in
 * order, with no other message between them.
 * Thread contract and progress: as mpscq_enqueue, with L <= (T + n) / N
 * + 2 and up to n / N + 1 spare segments to refill (allocation may be
 * needed for them, done before anything is published; FULL and CLOSED
 * are decided before any allocation).
 * Returns MPSCQ_OK (also for n == 0), MPSCQ_FULL (fewer than n free
 * places), MPSCQ_CLOSED, MPSCQ_NOMEM (nothing enqueued, no memory kept)
 * or MPSCQ_INVAL (q NULL, msgs NULL with n > 0, or n greater than a
 * bounded queue's capacity: it could never be admitted). */
MPSCQ_API int mpscq_enqueue_batch(mpscq_t *q, void *const *msgs, size_t n);

/* mpscq_enqueue_wait: as mpscq_enqueue, but while a bounded queue is
 * full wait until a place frees, the queue is closed, or timeout_ns
 * nanoseconds pass (< 0: forever; 0: do not wait; any value up to
 * LLONG_MAX is a deadline, never an overflow).  A waiting producer gets
 * in as soon as one place frees: the consumer publishes freed places in
 * batches, and a waiter takes the unpublished ones itself; the
 * consumer's next dequeue wakes it (a futex wake only when a producer
 * waits).  Without membarrier (some emulators) a waiter also looks every
 * 200 us.  Producers that do not wait pay nothing for this.
 * Thread contract and ordering: as mpscq_enqueue.
 * Progress: blocking while the queue is full, else as mpscq_enqueue.
 * Returns MPSCQ_OK, MPSCQ_CLOSED (also when the queue closes while the
 * call waits; nothing kept), MPSCQ_TIMEOUT (still full at the deadline,
 * or full with timeout_ns 0; nothing kept), MPSCQ_NOMEM or MPSCQ_INVAL
 * (q NULL).  An unbounded queue never waits. */
MPSCQ_API int mpscq_enqueue_wait(mpscq_t *q, void *msg, long long timeout_ns);

/* Producer handles: an enqueue without the thread-local lookup of the
 * calling thread's hazard record.  A handle is used by one thread at a
 * time, any thread (hand it over with ordinary synchronization). */
typedef struct mpscq_producer mpscq_producer_t;

/* mpscq_producer_create: a handle for enqueueing on q, in *p.  In a
 * preallocated queue (mpscq_config.preallocate) it allocates the handle's
 * spare segment too, so that the handle's enqueues never allocate.
 * Thread contract: any thread, concurrently with anything but destroy.
 * Returns MPSCQ_OK, MPSCQ_NOMEM (*p untouched) or MPSCQ_INVAL (q or p
 * NULL).  Reuses the record of a destroyed handle when there is one. */
MPSCQ_API int mpscq_producer_create(mpscq_t *q, mpscq_producer_t **p);

/* mpscq_producer_enqueue: as mpscq_enqueue(q, msg), through the handle;
 * MPSCQ_INVAL when p is NULL.  In a preallocated queue it never calls
 * alloc_fn but in the one case of doc/design.md s. 5.1 (a FULL instead
 * when the pool is dry), and it is async-signal-safe through a handle
 * that only signal handlers use, with the default allocator and logger
 * (doc/design.md s. 13). */
MPSCQ_API int mpscq_producer_enqueue(mpscq_producer_t *p, void *msg);

/* mpscq_producer_enqueue_batch: as mpscq_enqueue_batch(q, msgs, n),
 * through the handle; MPSCQ_INVAL when p is NULL, or msgs NULL with
 * n > 0. */
MPSCQ_API int mpscq_producer_enqueue_batch(mpscq_producer_t *p, void *const *msgs, size_t n);

/* mpscq_producer_destroy: give the handle back (its spare segments to the
 * queue's pool).  Must come before mpscq_destroy of its queue, and no
 * call may use the handle at the same time or after.  NULL is ignored. */
MPSCQ_API void mpscq_producer_destroy(mpscq_producer_t *p);

/* The consumer.  mpscq_dequeue, mpscq_dequeue_batch, mpscq_dequeue_wait,
 * mpscq_dequeue_batch_wait and mpscq_peek are the consumer calls: one
 * thread at a time may be inside one, any thread.  A consumer call made
 * while another thread is inside one (asleep in a waiting call too)
 * returns MPSCQ_BUSY and changes nothing; the check costs the fast path no
 * locked instruction.  Handing the role to another thread between calls is
 * legal (the calls' own ordering is as the program's synchronization
 * makes it); the new thread's first call costs one membarrier system
 * call.  A thread's first consumer call may return MPSCQ_NOMEM when no
 * thread slot is free (more than 65 536 threads), or, beyond 256 threads,
 * when a 16 KiB block of per-thread marks (posix_memalign, not alloc_fn)
 * cannot be allocated.  A consumer call from alloc_fn, free_fn or log_fn
 * run inside a consumer call returns MPSCQ_BUSY. */

/* mpscq_dequeue: take the oldest ready message into *msg.
 * Thread contract: the consumer: one thread at a time, any thread (see
 * "The consumer" below).
 * Ordering: acquire (pairs with the producer's release).
 * Progress: wait-free; never waits for a producer beyond 256 ns.  When
 * the next ticket is taken but its slot not yet written, the call spins
 * that long for it (the producer is almost always a few instructions
 * from done), then skips it, taking a later message if there is one; the
 * consumer returns to that slot later.  With no ticket taken it returns
 * MPSCQ_EMPTY at once.
 * Returns MPSCQ_OK, MPSCQ_EMPTY (nothing ready; *msg untouched),
 * MPSCQ_CLOSED (closed and drained), MPSCQ_INVAL (q or msg NULL), MPSCQ_BUSY
 * (another thread is inside a consumer call) or MPSCQ_NOMEM (this
 * thread's first consumer call found no thread slot). */
MPSCQ_API int mpscq_dequeue(mpscq_t *q, void **msg);

/* mpscq_dequeue_batch: dequeue up to max messages into msgs[].
 * Thread contract: the consumer.  Returns how many were stored (0 when
 * empty, closed, q/msgs NULL, or BUSY or NOMEM as mpscq_dequeue). */
MPSCQ_API size_t mpscq_dequeue_batch(mpscq_t *q, void **msgs, size_t max);

/* mpscq_dequeue_wait: as mpscq_dequeue, but when nothing is ready spin
 * briefly, then nap (futex waits of about mpscq_config.nap_ns that no
 * producer pays to end: a message waits about that long at most), and
 * after max(1 ms, 8 naps) with nothing sleep in the kernel until a
 * producer or mpscq_close wakes it, or timeout_ns nanoseconds pass (< 0:
 * forever, 0: do not wait).  A thread's first nap lowers its timer slack
 * to 1 us (prctl PR_SET_TIMERSLACK), once.
 * Thread contract: the consumer; it is inside the call while it sleeps.
 * Returns MPSCQ_OK, MPSCQ_CLOSED (at once once closed and drained),
 * MPSCQ_TIMEOUT, MPSCQ_INVAL, MPSCQ_BUSY or MPSCQ_NOMEM (as
 * mpscq_dequeue). */
MPSCQ_API int mpscq_dequeue_wait(mpscq_t *q, void **msg, long long timeout_ns);

/* mpscq_dequeue_batch_wait: wait as mpscq_dequeue_wait until at least
 * one message is ready, the queue is closed and drained, or timeout_ns
 * passes; then take up to max messages into msgs[] (those ready now, in
 * order, as mpscq_dequeue_batch).  *n is how many were stored.
 * Thread contract: the consumer, as mpscq_dequeue_wait.
 * Returns MPSCQ_OK (*n >= 1), MPSCQ_CLOSED (closed and drained, *n = 0),
 * MPSCQ_TIMEOUT (*n = 0), MPSCQ_INVAL (q, msgs or n NULL, or max 0;
 * *n = 0 when n is not NULL), MPSCQ_BUSY or MPSCQ_NOMEM (*n = 0; as
 * mpscq_dequeue). */
MPSCQ_API int mpscq_dequeue_batch_wait(mpscq_t *q, void **msgs, size_t max, size_t *n,
                                       long long timeout_ns);

/* mpscq_peek: the next message, without removing it: the next dequeue
 * (any of the calls above) returns the same message.  Peeking again
 * returns it again.  A peeked message still counts in mpscq_size and
 * still holds its place in a bounded queue.
 * Thread contract: the consumer.
 * Progress: as mpscq_dequeue.
 * Returns MPSCQ_OK (*msg set), MPSCQ_EMPTY, MPSCQ_CLOSED (closed and
 * drained), MPSCQ_INVAL (q or msg NULL), MPSCQ_BUSY or MPSCQ_NOMEM (as
 * mpscq_dequeue); *msg is untouched unless OK. */
MPSCQ_API int mpscq_peek(mpscq_t *q, void **msg);

/* mpscq_close: refuse further enqueues (they return MPSCQ_CLOSED and keep
 * nothing), wake a sleeping consumer and every producer waiting in
 * mpscq_enqueue_wait (they return MPSCQ_CLOSED).  Messages enqueued before remain
 * and are drained normally; after them dequeue returns MPSCQ_CLOSED.
 * Thread contract: any thread; idempotent.  NULL is ignored. */
MPSCQ_API void mpscq_close(mpscq_t *q);

/* mpscq_is_closed: 1 once mpscq_close(q) has run, else 0 (also for NULL). */
MPSCQ_API int mpscq_is_closed(const mpscq_t *q);

/* mpscq_size: messages accepted and not yet dequeued.  Exact when no
 * operation is in progress, approximate under traffic.  Any thread. */
MPSCQ_API size_t mpscq_size(const mpscq_t *q);

/* mpscq_capacity: the configured capacity, 0 when unbounded. */
MPSCQ_API size_t mpscq_capacity(const mpscq_t *q);

/* mpscq_stats: copy the counters into *out (zeros for a NULL q).
 * Any thread; each counter is read atomically, the set is not a snapshot.
 * mpscq_stats_sized writes size bytes: the counters this library has,
 * zeros for any it does not know. */
MPSCQ_API void mpscq_stats_sized(const mpscq_t *q, struct mpscq_stats *out, size_t size);
static inline void mpscq_stats(const mpscq_t *q, struct mpscq_stats *out)
{
    mpscq_stats_sized(q, out, sizeof *out);
}

/* ------------------------------------------------------------------ */
/* Queue sets: one consumer over several queues, by priority (0.3).     */

/* Opaque set handle. */
typedef struct mpscq_set mpscq_set_t;

/* The most queues one set holds (mpscq_set_add says MPSCQ_INVAL beyond). */
#define MPSCQ_SET_MAX 128u

/* mpscq_set_create: an empty set.  Strict priority (see
 * mpscq_set_fairness).  Returns MPSCQ_OK (*s set), MPSCQ_NOMEM or
 * MPSCQ_INVAL (s NULL); *s is untouched unless OK. */
MPSCQ_API int mpscq_set_create(mpscq_set_t **s);

/* mpscq_set_add: add q with a priority; lower numbers are served first,
 * equal ones round robin.  A queue belongs to at most one set; while it
 * does, the set's thread is its consumer.
 * Returns MPSCQ_OK, MPSCQ_INVAL (s or q NULL, q already in a set - this
 * one or another -, or the set holds MPSCQ_SET_MAX queues). */
MPSCQ_API int mpscq_set_add(mpscq_set_t *s, mpscq_t *q, unsigned priority);

/* mpscq_set_remove: take q out of the set; it may join another set or be
 * consumed on its own afterwards.  Its messages stay in it.
 * Returns MPSCQ_OK or MPSCQ_INVAL (s or q NULL, q not in this set). */
MPSCQ_API int mpscq_set_remove(mpscq_set_t *s, mpscq_t *q);

/* mpscq_set_fairness: with k > 0, a lower priority that has a message
 * waiting is served after at most k messages taken from higher priorities
 * (sooner when its turn was already due; the highest such priority first;
 * a priority of several queues gets one message per turn, round robin),
 * so no priority starves.  k = 0 (the default) is strict priority.
 * Returns MPSCQ_OK or MPSCQ_INVAL (s NULL). */
MPSCQ_API int mpscq_set_fairness(mpscq_set_t *s, unsigned k);

/* mpscq_set_dequeue_wait: take one message from the first member with one
 * ready, in priority order (round robin among equal priorities); *from
 * (when from is not NULL) says which queue.  When none is ready, wait as
 * mpscq_dequeue_wait does (spin briefly, nap with the members' shortest
 * nap_ns, then sleep in one futex_waitv over the members: a producer of
 * any member wakes it and pays nothing while the consumer is awake or
 * napping) until a message comes, every member is
 * closed and drained, or timeout_ns passes (< 0: forever; 0: do not wait).
 * Ordering: each producer's messages in its order within a queue; across
 * queues, priority (and mpscq_set_fairness).
 * Thread contract: one thread at a time calls mpscq_set_add, _remove,
 * _fairness, _dequeue_wait and _destroy on a set; it is the members'
 * consumer (no other thread may dequeue from a member meanwhile).
 * Returns MPSCQ_OK (*msg, *from set), MPSCQ_EMPTY (timeout 0 and nothing
 * ready), MPSCQ_TIMEOUT (a timeout > 0 expired), MPSCQ_CLOSED (every member
 * closed and drained), MPSCQ_INVAL (s or msg NULL, or the set has no
 * member), MPSCQ_BUSY or MPSCQ_NOMEM (a member's consumer call said so, as
 * mpscq_dequeue).  *msg and *from are untouched unless OK. */
MPSCQ_API int mpscq_set_dequeue_wait(mpscq_set_t *s, mpscq_t **from, void **msg,
                                     long long timeout_ns);

/* mpscq_set_destroy: free the set; its queues leave it and stay usable
 * (their messages stay in them).  NULL is ignored. */
MPSCQ_API void mpscq_set_destroy(mpscq_set_t *s);

/* ---- mpscq_ring: an interprocess ring in shared memory -------------
 *
 * A second queue kind (mpscq_ring(3), doc/ring-design.md): messages of
 * 1 .. max_message bytes copied into a shared region, any number of
 * producer threads in any number of processes, one consumer at a time
 * (any thread of any process).  Producers are wait-free: one
 * fetch-and-add claims the space.  The consumer passes a claim whose
 * producer stopped or died between reserve and commit; a stopped claim
 * pins only its chunk of the ring, a dead one is dropped. */
typedef struct mpscq_ring mpscq_ring_t;

typedef struct mpscq_ring_config {
    size_t bytes;          /* payload capacity of the shared region, rounded
                            * up to whole pages; 0 = MPSCQ_RING_BYTES_DEFAULT */
    size_t max_message;    /* largest message in bytes (exact); 0 =
                            * MPSCQ_RING_MAX_MESSAGE_DEFAULT */
    unsigned mode;         /* permission bits of a named region; 0 = 0600 */
} mpscq_ring_config;

#define MPSCQ_RING_BYTES_DEFAULT       ((size_t)1 << 20)
#define MPSCQ_RING_BYTES_MAX           ((size_t)1 << 40)
#define MPSCQ_RING_MAX_MESSAGE_DEFAULT ((size_t)1024)
#define MPSCQ_RING_MAX_MESSAGE_MAX     ((size_t)1 << 24)
/* Producer threads attached to one ring at once (the next gets NOMEM). */
#define MPSCQ_RING_PRODUCERS_MAX       256

/* mpscq_ring_config_init: every field 0 (the defaults). */
MPSCQ_API void mpscq_ring_config_init(mpscq_ring_config *cfg);

/* mpscq_ring_create: a new ring.  name: a POSIX shared-memory name
 * ("/x", no other slash), created O_EXCL with cfg->mode; NULL = an
 * anonymous region (memfd), for fork() or passing mpscq_ring_fd.  cfg
 * NULL = the defaults.  Returns MPSCQ_OK (*r set), MPSCQ_EXIST (the name
 * exists), MPSCQ_INVAL (bad name or sizes) or MPSCQ_NOMEM. */
MPSCQ_API int mpscq_ring_create(mpscq_ring_t **r, const char *name,
                                const mpscq_ring_config *cfg);
/* mpscq_ring_open: attach the named ring.  MPSCQ_OK, MPSCQ_INVAL (no such
 * name, or the region is not a ring of this layout version) or
 * MPSCQ_NOMEM. */
MPSCQ_API int mpscq_ring_open(mpscq_ring_t **r, const char *name);
/* mpscq_ring_fd: the region's descriptor (owned by r), -1 for NULL. */
MPSCQ_API int mpscq_ring_fd(const mpscq_ring_t *r);
/* mpscq_ring_open_fd: attach the ring behind fd (duplicated; the caller
 * keeps fd).  Returns as mpscq_ring_open. */
MPSCQ_API int mpscq_ring_open_fd(mpscq_ring_t **r, int fd);

/* Producers: any number of threads in any number of processes.  One
 * claim open per thread and ring at a time.
 * mpscq_ring_write: copy len bytes in.  MPSCQ_OK, MPSCQ_FULL (no room;
 * nothing written), MPSCQ_CLOSED, MPSCQ_INVAL (len 0 or > max_message,
 * NULL argument, or a claim of this thread still open), MPSCQ_NOMEM (more
 * than MPSCQ_RING_PRODUCERS_MAX producer threads attached). */
MPSCQ_API int mpscq_ring_write(mpscq_ring_t *r, const void *data, size_t len);
/* mpscq_ring_write_wait: as mpscq_ring_write, waiting up to timeout_ns
 * (< 0 = forever, 0 = do not wait: MPSCQ_FULL) while the ring is full:
 * the consumer wakes waiting writers when it frees room, close wakes
 * them with MPSCQ_CLOSED; MPSCQ_TIMEOUT when a positive timeout expires.
 * A writer waits in the kernel (a shared futex); a signal does not end
 * the wait.  While nobody waits, the consumer pays a fence and a load
 * per chunk of the ring it frees. */
MPSCQ_API int mpscq_ring_write_wait(mpscq_ring_t *r, const void *data, size_t len,
                                    long long timeout_ns);
/* mpscq_ring_reserve: claim len bytes; *buf points at them until the
 * same thread's mpscq_ring_commit.  Returns as mpscq_ring_write. */
MPSCQ_API int mpscq_ring_reserve(mpscq_ring_t *r, size_t len, void **buf);
/* mpscq_ring_commit: publish the calling thread's open claim.  MPSCQ_OK,
 * or MPSCQ_INVAL (buf is not this thread's open claim on r). */
MPSCQ_API int mpscq_ring_commit(mpscq_ring_t *r, void *buf);

/* The single consumer.  mpscq_ring_read, mpscq_ring_read_wait,
 * mpscq_ring_peek, mpscq_ring_peek_wait and mpscq_ring_release are the
 * consumer calls: one thread of one process at a time may be inside one,
 * through any handle.  A consumer call made while another thread is
 * inside one (asleep in a waiting call too), or from inside one on the
 * same thread (a signal handler), returns MPSCQ_BUSY and changes
 * nothing.  A consumer that died inside a call (killed while it slept
 * in read_wait, say) does not keep the role: the next call finds its
 * thread gone and takes it (processes of one pid and time namespace:
 * doc/ring-design.md s. 8).  Each call costs one locked instruction on
 * the consumer state's line.  Handing the role to another thread or
 * process between calls needs nothing more: the calls order themselves.
 * mpscq_ring_read: copy the next message into buf (cap bytes).  MPSCQ_OK
 * (*len set), MPSCQ_EMPTY, MPSCQ_CLOSED (closed and drained), MPSCQ_BUSY,
 * MPSCQ_INVAL (NULL argument; cap below the next message's length: *len
 * says its length and the message stays; or consumer state in the region
 * that fails its checks). */
MPSCQ_API int mpscq_ring_read(mpscq_ring_t *r, void *buf, size_t cap, size_t *len);
/* mpscq_ring_read_wait: as mpscq_ring_read, sleeping up to timeout_ns
 * (< 0 = forever, 0 = do not wait: MPSCQ_EMPTY) for a message or the
 * close; MPSCQ_TIMEOUT when a positive timeout expires. */
MPSCQ_API int mpscq_ring_read_wait(mpscq_ring_t *r, void *buf, size_t cap, size_t *len,
                                   long long timeout_ns);
/* The zero-copy read.
 * mpscq_ring_peek: the next message in place: *data points at its *len
 * bytes inside the shared region, which stay there, unchanged by the
 * ring, until mpscq_ring_release (or the consumer's next read,
 * read_wait or detach).  Calling it again before the release gives the
 * same message.  MPSCQ_OK, MPSCQ_EMPTY, MPSCQ_CLOSED (closed and
 * drained), MPSCQ_BUSY, MPSCQ_INVAL (NULL argument, or consumer state in
 * the region that fails its checks).  The bytes are in memory every attached
 * process can write: a consumer that does not trust its producers
 * copies before it validates. */
MPSCQ_API int mpscq_ring_peek(mpscq_ring_t *r, const void **data, size_t *len);
/* mpscq_ring_peek_wait: as mpscq_ring_peek, waiting as
 * mpscq_ring_read_wait does. */
MPSCQ_API int mpscq_ring_peek_wait(mpscq_ring_t *r, const void **data, size_t *len,
                                   long long timeout_ns);
/* mpscq_ring_release: done with the message mpscq_ring_peek gave; its
 * space goes back to the producers.  MPSCQ_OK, MPSCQ_INVAL (r NULL or
 * no message held), or MPSCQ_BUSY (another thread is inside a consumer
 * call: the message stays held; release it again later).  A message held when its consumer detaches or dies
 * counts as read (it is not delivered again); the next consumer's call
 * gives its space back. */
MPSCQ_API int mpscq_ring_release(mpscq_ring_t *r);
/* Counters of a ring, shared by every process attached to it. */
struct mpscq_ring_stats {
    unsigned long long delivered;      /* messages read or peeked */
    unsigned long long full;           /* MPSCQ_FULL returned to write or reserve */
    unsigned long long dropped_claims; /* claims dropped: their thread died
                                        * before committing (or got FULL after
                                        * claiming); never delivered */
    unsigned long long corrupt;        /* records and consumer state found
                                        * corrupt and skipped */
    unsigned long long refused_chunks; /* chunk numbers passed before a physical
                                        * chunk was free for them */
    unsigned long long producers;      /* producer threads attached now */
    unsigned long long closed;         /* 1 once mpscq_ring_close was called */
    unsigned long long busy;           /* MPSCQ_BUSY returned to consumer calls
                                        * (another thread was inside one) */
};
/* mpscq_ring_stats: copy the counters into *out (zeros for a NULL r).
 * Any thread of any attached process; each counter is read atomically,
 * the set is not a snapshot.  mpscq_ring_stats_sized writes size bytes:
 * the counters this library has, zeros for any it does not know. */
MPSCQ_API void mpscq_ring_stats_sized(const mpscq_ring_t *r, struct mpscq_ring_stats *out,
                                      size_t size);
static inline void mpscq_ring_stats(const mpscq_ring_t *r, struct mpscq_ring_stats *out)
{
    mpscq_ring_stats_sized(r, out, sizeof *out);
}
/* mpscq_ring_close: from any process; later writes and reserves get
 * MPSCQ_CLOSED, reads MPSCQ_CLOSED once drained.  Wakes the consumer. */
MPSCQ_API void mpscq_ring_close(mpscq_ring_t *r);
/* mpscq_ring_detach: unmap this process's view and free r.  No thread of
 * this process may use r during or after the call.  NULL is ignored. */
MPSCQ_API void mpscq_ring_detach(mpscq_ring_t *r);
/* mpscq_ring_unlink: remove a name (attached processes keep the region).
 * MPSCQ_OK or MPSCQ_INVAL (bad or unknown name). */
MPSCQ_API int mpscq_ring_unlink(const char *name);

/* mpscq_strerror: a static English description of a status code. */
MPSCQ_API const char *mpscq_strerror(int status);

/* mpscq_implementation: which hot-path implementation was built:
 * "c11" or "x86_64-nasm". */
MPSCQ_API const char *mpscq_implementation(void);

/* mpscq_version: the library's version, "MAJOR.MINOR.PATCH" (compare
 * with MPSCQ_VERSION_STRING, the header's).  A static string. */
MPSCQ_API const char *mpscq_version(void);

#ifdef __cplusplus
}
#endif

#endif /* MPSCQ_H */
