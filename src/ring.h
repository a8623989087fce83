/*
 * ring.h - mpscq_ring's shared-region layout and its process-local handle
 * (doc/ring-design.md gives the layout byte by byte and the argument).
 * Not installed.
 *
 * The region, every offset from its start, little-endian:
 *   header     one page: struct ring_header, `ready` written last
 *   shared     struct ring_shared: tail, the consumer's futex, close
 *   map        M words, one per logical chunk number modulo M
 *   slots      P producer slots of 64 bytes
 *   consumer   struct ring_consumer, then K free-chunk words, then G gaps
 *   chunks     K chunks of `stride` bytes: S/16 state bytes (padded to
 *              64), then S + max_rec data bytes (the last max_rec are the
 *              spill area of a record that starts before S)
 */
#ifndef MPSCQ_RING_H
#define MPSCQ_RING_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <sys/types.h>

#include "internal.h"

#define RING_MAGIC      "MPSCQRNG"
#define RING_VERSION    1u
#define RING_READY      0x52454459u   /* "READY": the creator finished */
#define RING_UNIT       16u           /* record alignment and state granule */
#define RING_HDR        16u           /* record header bytes */
#define RING_SLOTS      MPSCQ_RING_PRODUCERS_MAX
/* A gap holds at least one unresolved claim or the spill of one, and a
 * thread has one claim open at a time: 2 per slot suffices (ring-design
 * s. 4); the rest is headroom for dead claims not yet swept. */
#define RING_GAPS       (2u * RING_SLOTS + 64u)
#define RING_CLOSED     (UINT64_C(1) << 63)
#define RING_UNKNOWN    UINT64_MAX    /* close_pos before the closer stores it */

/* A record's state byte (one per 16-byte unit of a chunk's data). */
#define RING_ST_NONE    0u
#define RING_ST_HEAD    1u            /* a committed record starts here */
#define RING_ST_DONE    2u            /* delivered out of a gap (consumer only) */

/* Map words: chunk number (44 bits) << 20 | state << 16 | physical chunk. */
#define RING_MAP_FREE      0u
#define RING_MAP_INSTALLED 1u
#define RING_MAP_REFUSED   2u
#define RING_CMASK         ((UINT64_C(1) << 44) - 1)
#define RING_MAPW(c, st, p) ((((uint64_t)(c) & RING_CMASK) << 20) | ((uint64_t)(st) << 16) | (uint64_t)(p))
#define RING_MAPW_CHUNK(w)  ((w) >> 20)
#define RING_MAPW_STATE(w)  (((w) >> 16) & 0xfu)
#define RING_MAPW_PHYS(w)   ((uint32_t)((w) & 0xffffu))

/* A slot's owner word while the taker has not stored its start time:
 * alive to everyone. */
#define RING_OWNER_TAKING   (UINT64_C(1) << 63)
/* A slot's claim word. */
#define RING_CLAIM_IDLE     UINT64_MAX
#define RING_CLAIM_PENDING  (UINT64_C(1) << 63)  /* | c0: before the fetch-and-add */

struct ring_header {
    char magic[8];
    uint32_t version;
    uint32_t header_size;
    uint64_t region_size;
    uint64_t bytes;          /* the configured payload bytes (page multiple) */
    uint32_t max_message;
    uint32_t unit;           /* RING_UNIT */
    uint32_t nchunks;        /* K */
    uint32_t chunk_bytes;    /* S: logical bytes per chunk */
    uint32_t map_words;      /* M: a power of two >= 8 K */
    uint32_t nslots;         /* P */
    uint32_t ngaps;          /* G */
    uint32_t max_rec;        /* 16 + max_message rounded up to 16 */
    uint64_t off_shared, off_map, off_slots, off_consumer, off_free, off_gaps, off_chunks;
    uint64_t stride;         /* bytes per chunk */
    uint64_t state_bytes;    /* S/16 rounded up to 64 */
    _Atomic uint32_t ready;  /* RING_READY, stored last (release) */
    uint32_t mode;
};

struct ring_shared {
    /* Producers' line: the logical byte position of the next claim; bit
     * 63 = closed. */
    MPSCQ_ALIGNED _Atomic uint64_t tail;
    /* The consumer's futex: sleeping = 1 while it may sleep; wake_seq the
     * futex word producers bump. */
    MPSCQ_ALIGNED _Atomic uint32_t sleeping;
    _Atomic uint32_t wake_seq;
    /* Written once by the closer after it set bit 63 on tail: tail's
     * value before, the end of the last claim that may be delivered. */
    _Atomic uint64_t close_pos;
    /* Counters (relaxed; statistics only). */
    MPSCQ_ALIGNED _Atomic uint64_t full_count;
    /* Producers waiting for room (mpscq_ring_write_wait): how many, and
     * the futex word the consumer bumps when it installs chunks while
     * any wait (ring_write.c says how nothing is lost).  Same line as
     * full_count: producers touch it only after FULL. */
    _Atomic uint32_t space_waiters;
    _Atomic uint32_t space_seq;
    /* MPSCQ_BUSY answers to consumer calls (relaxed; statistics). */
    _Atomic uint64_t busy_count;
};

struct ring_slot {
    _Atomic uint64_t owner;      /* pid << 32 | tid; 0 = free; | RING_OWNER_TAKING
                                  * while a thread is taking it */
    _Atomic uint64_t start_time; /* the owner thread's start (clock ticks since
                                  * boot, /proc/PID/task/TID/stat), 0 unknown */
    _Atomic uint64_t claim;      /* IDLE, PENDING | c0, or the claimed position */
    uint64_t pad[5];
};

struct ring_gap {
    uint64_t start, end;         /* logical positions, inside one chunk */
};

/* Written by the consumer only; the consumer validates it on every use
 * (the region is shared with processes it does not trust). */
struct ring_consumer {
    uint64_t head;           /* next position of the main scan */
    uint64_t limit;          /* the main scan reads below this tail value */
    uint64_t next_install;   /* next logical chunk number to install */
    uint64_t pass_pos;       /* gap pass: next position to look at */
    uint32_t nfree;          /* free physical chunks in free[] */
    uint32_t ngaps;          /* passed ranges in gaps[], sorted */
    uint32_t pass_active;    /* a gap pass is under way */
    uint32_t empty_reads;    /* EMPTY answers since the last sweep */
    uint64_t swept_oldest;   /* 1 + the oldest chunk when installing last
                              * stopped at oldest + M and a sweep ran */
    uint64_t delivered, dropped_claims, corrupt, refused_chunks;
    uint64_t held;           /* 1 + the chunk of a record taken by
                              * mpscq_ring_peek whose retirement waits for
                              * mpscq_ring_release; 0 none */
    /* The thread inside a consumer call: RING_CONSUMER_WORD of it, 0 none.
     * Written by whoever takes the role or leaves it (ring_owner.c), not
     * by the consumer state's rules above. */
    _Atomic uint64_t owner;
};

/* A consumer's owner word: its tid (below 2^22, Linux's PID_MAX_LIMIT)
 * and its start time in clock ticks modulo 2^42 (0: unknown), so that a
 * reused tid is not taken for the thread that held the role. */
#define RING_CONSUMER_TID_SHIFT  42
#define RING_CONSUMER_START_MASK ((UINT64_C(1) << RING_CONSUMER_TID_SHIFT) - 1)
#define RING_CONSUMER_WORD(tid, start) \
    ((uint64_t)(uint32_t)(tid) << RING_CONSUMER_TID_SHIFT | ((start) & RING_CONSUMER_START_MASK))

/* A counter of the consumer state: written by the consumer only, read by
 * mpscq_ring_stats in any thread or process.  The plain field is stored
 * atomically (relaxed; GCC/Clang builtins) so that the reader's atomic
 * load is no data race. */
#define RING_COUNT(field) __atomic_store_n(&(field), (field) + 1, __ATOMIC_RELAXED)

/* The process-local handle. */
struct ring_reg;
struct mpscq_ring {
    uint8_t *base;
    size_t size;
    int fd;
    uint64_t id;                 /* unique in this process, for the TLS cache */
    struct ring_header *hdr;
    struct ring_shared *sh;
    _Atomic uint64_t *map;
    struct ring_slot *slots;
    struct ring_consumer *cs;
    uint32_t *free_list;
    struct ring_gap *gaps;
    uint8_t *chunks;
    /* Copies of the validated header fields (never re-read from shared). */
    uint64_t S, K, M, P, G, stride, state_bytes, max_message, max_rec;
    uint64_t s_inv;              /* UINT64_MAX / S, for ring_chunk */
    uint64_t mmask;              /* M - 1 (M is a power of two): c % M = c & mmask */
    /* The consumer's counts during one of its calls: read from the region
     * once (clamped), written back at the end, so that a process writing
     * garbage meanwhile cannot move an index out of the arrays. */
    uint32_t ng, nf;
    /* read_wait's adaptive spin budget in ns (wait.c, mpscq_wait_spin). */
    unsigned wait_spin_ns;
    /* The zero-copy read (mpscq_ring_peek, ring_read.c): held is 1 from
     * the take of a peek until mpscq_ring_release.  While a record is
     * held its chunk (hold_c) is not retired; the region's `held` names
     * it when its retirement is due at the release. */
    int held;
    uint64_t hold_c;
    const void *peek_data;       /* the held record's payload, in the region */
    size_t peek_len;
    pthread_mutex_t lock;        /* regs */
    struct ring_reg *regs;       /* this process's attached producer threads */
    struct mpscq_ring *next;     /* every handle of the process (ring.c) */
};

/* A producer thread's attachment to one ring handle.  The fast paths
 * (ring_fastpath.c and its NASM twin asm/x86_64/ring.asm) read and write
 * slot and the open_ fields: offsets.c gives their offsets. */
struct ring_reg {
    struct ring_reg *next;
    pid_t tid;
    uint32_t slot;
    void *open_buf;              /* the open claim's payload, NULL if none */
    _Atomic uint8_t *open_state; /* its state byte, which commit sets */
};

/* Layout from (bytes, max_message): 0 or MPSCQ_INVAL. */
MPSCQ_HIDDEN int mpscq_ring_layout(uint64_t bytes, uint64_t max_message, struct ring_header *h);

static inline _Atomic uint8_t *ring_state(const struct mpscq_ring *r, uint32_t phys)
{
    return (_Atomic uint8_t *)(r->chunks + (uint64_t)phys * r->stride);
}
static inline uint8_t *ring_data(const struct mpscq_ring *r, uint32_t phys)
{
    return r->chunks + (uint64_t)phys * r->stride + r->state_bytes;
}
/* x / S without a division (a 64-bit divide costs 30-40 cycles, and the
 * producer and the consumer each need a few per message): for x < 2^63
 * the high half of x * floor((2^64 - 1) / S) is x / S or one less (it
 * exceeds x / S - 1 since x (1/S + 1) / 2^64 < 1), so one step corrects
 * it.  tests/check_ring.c (test_chunk_division) compares it with x / S. */
static inline uint64_t ring_chunk(const struct mpscq_ring *r, uint64_t x)
{
#ifdef __SIZEOF_INT128__
    if (MPSCQ_UNLIKELY(x >> 63))
        return x / r->S;            /* only a corrupt value gets here */
    uint64_t q = (uint64_t)(((unsigned __int128)x * r->s_inv) >> 64);
    return (q + 1) * r->S <= x ? q + 1 : q;
#else
    return x / r->S;
#endif
}
static inline uint64_t ring_off(const struct mpscq_ring *r, uint64_t x)
{
    return x - ring_chunk(r, x) * r->S;
}
static inline uint64_t ring_round_unit(uint64_t n) { return (n + RING_UNIT - 1) & ~(uint64_t)(RING_UNIT - 1); }

/* Physical chunks free, or installed under a chunk number at or after
 * the head's chunk: every one of the K when nothing is held, passed or
 * waiting (the consumer's state as it stands; for tests and the fuzzer,
 * which check that no chunk is lost or pinned). */
static inline uint64_t ring_chunks_accounted(const struct mpscq_ring *r)
{
    uint64_t n = r->cs->nfree;
    uint64_t hc = ring_chunk(r, r->cs->head);
    for (uint64_t i = 0; i <= r->mmask; i++) {
        /* Relaxed: a count taken while nothing else runs. */
        uint64_t w = atomic_load_explicit(&r->map[i], memory_order_relaxed);
        if (RING_MAPW_STATE(w) == RING_MAP_INSTALLED && RING_MAPW_CHUNK(w) >= hc)
            n++;
    }
    return n;
}

/* The record header a producer writes before committing. */
struct ring_rec {
    uint64_t pos;            /* the record's logical position */
    uint32_t len;            /* payload bytes */
    uint32_t check;          /* len ^ RING_REC_CHECK */
};
#define RING_REC_CHECK 0x4d524543u   /* "MREC" */

/* ring_owner.c: who this thread is (filled by mpscq_ring_self, reset in a
 * fork child), and liveness (for the consumer's sweep, a producer looking
 * for a slot, and a consumer call finding the role taken). */
struct ring_self {
    pid_t pid, tid;              /* 0 until mpscq_ring_self */
    uint64_t start_time;         /* the thread's, clock ticks; 0 unknown */
    uint64_t consumer;           /* its RING_CONSUMER_WORD; 0 until known */
    unsigned inside;             /* consumer calls it is inside (of any ring) */
};
extern _Thread_local struct ring_self mpscq_ring_me MPSCQ_HIDDEN MPSCQ_TLS_MODEL;
extern _Atomic uint32_t mpscq_ring_fork_epoch MPSCQ_HIDDEN;
MPSCQ_HIDDEN const struct ring_self *mpscq_ring_self(void);
/* Give this thread's slots back when it exits. */
MPSCQ_HIDDEN void mpscq_ring_watch_exit(void);
MPSCQ_HIDDEN int mpscq_ring_owner_alive(uint64_t owner, uint64_t start_time);
MPSCQ_HIDDEN int mpscq_ring_consumer_alive(uint64_t word);
/* A consumer call's entry when the role was not free or this thread's
 * word is not known yet: MPSCQ_OK (inside, counted in `inside`) or
 * MPSCQ_BUSY. */
MPSCQ_HIDDEN int mpscq_ring_consumer_enter_slow(struct mpscq_ring *r);
/* ring_write.c */
MPSCQ_HIDDEN void mpscq_ring_regs_release(struct mpscq_ring *r);
/* ring.c: every handle of the process, for fork (the child forgets the
 * parent threads' slots) and thread exit (its slots are given back). */
MPSCQ_HIDDEN void mpscq_ring_forget_regs_in_child(void);
MPSCQ_HIDDEN void mpscq_ring_release_thread(pid_t tid);
/* ring_read.c: wake a sleeping consumer (producers and close). */
MPSCQ_HIDDEN void mpscq_ring_wake(struct mpscq_ring *r);
/* ring_write.c: wake the producers waiting for room, if any (the
 * consumer after installing chunks, and close). */
MPSCQ_HIDDEN void mpscq_ring_wake_space(struct mpscq_ring *r);

/* ---- the producers' fast paths' continuations ----------------------
 *
 * arch.h declares the fast paths (claim, publish, write), which have a
 * C11 twin in ring_fastpath.c and an x86-64 NASM one in
 * asm/x86_64/ring.asm.  What is not their common case goes on here, in
 * ring_write.c, tail-called with the state as it stands.  _slow: the
 * pre-check did not pass (or tail says closed); start over.  _after: the
 * fetch-and-add returned pos, and pos is closed or not in an installed
 * chunk. */
MPSCQ_HIDDEN int mpscq_ring_claim_slow(struct mpscq_ring *r, struct ring_reg *g, size_t len);
MPSCQ_HIDDEN int mpscq_ring_claim_after(struct mpscq_ring *r, struct ring_reg *g, size_t len,
                                        uint64_t pos);
MPSCQ_HIDDEN int mpscq_ring_write_slow(struct mpscq_ring *r, struct ring_reg *g,
                                       const void *data, size_t len);
MPSCQ_HIDDEN int mpscq_ring_write_after(struct mpscq_ring *r, struct ring_reg *g,
                                        const void *data, size_t len, uint64_t pos);
/* Wake the consumer, return MPSCQ_OK (the publish's tail call). */
MPSCQ_HIDDEN int mpscq_ring_wake_ok(struct mpscq_ring *r);

/* A claim at pos in chunk c, physical chunk phys, now in the slot's
 * claim word: write the record's header; the claim's payload and state
 * byte. */
static inline uint8_t *ring_claim_record(const struct mpscq_ring *r, uint64_t pos, uint64_t c,
                                         uint32_t phys, size_t len, _Atomic uint8_t **state)
{
    uint64_t off = pos - c * r->S;
    uint8_t *chunk = r->chunks + (uint64_t)phys * r->stride;
    uint8_t *rec = chunk + r->state_bytes + off;
    struct ring_rec h = { pos, (uint32_t)len, (uint32_t)len ^ RING_REC_CHECK };
    memcpy(rec, &h, sizeof h);
    *state = (_Atomic uint8_t *)(chunk + off / RING_UNIT);
    return rec + RING_HDR;
}

#endif /* MPSCQ_RING_H */
