/*
 * hazard.c - hazard-pointer records, thread slots and the per-queue
 * directory that maps a slot to its record (design.md s. 4, "Records").
 */
#include "config.h"

#include <pthread.h>
#include <string.h>

#include "consumer.h"
#include "hazard.h"
#include "segment.h"

_Thread_local struct mpscq_tls_ent mpscq_tls MPSCQ_TLS_MODEL = { .mark = &mpscq_mark_none };
long mpscq_tls_tpoff;

/* The calling thread's slot plus one (0: none yet). */
static _Thread_local unsigned my_slot;

/* Which slots are owned: bit i of word i / 64.  Claimed with fetch_or,
 * given back with fetch_and. */
static _Atomic uint64_t slot_bits[MPSCQ_MAX_THREADS / 64];

/* Registry of live queues.  Its lock is taken by mpscq_create,
 * mpscq_destroy and thread exit only; never on an enqueue or dequeue, and
 * no user callback runs under it. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mpscq *registry_head;

/* The thread-exit key, created when the library is loaded: creating it
 * lazily would put a pthread_once (a lock) on a thread's first enqueue.
 * key_ok == 0 (pthread_key_create failed): threads still enqueue, but
 * their slots and spares are not given back when they exit. */
static pthread_key_t exit_key;
static int key_ok;

static void thread_exit(void *unused);

#ifdef MPSCQ_TEST_HOOKS
_Atomic int mpscq_test_fail_key_create;
#endif

/* fork(): the child must not inherit the registry lock held by a thread
 * that does not exist there (design.md s. 13). */
static void fork_prepare(void)
{
    MPSCQ_TEST_HOOK(MPSCQ_HOOK_FORK_PREPARE, NULL, 0);
    pthread_mutex_lock(&registry_lock);
}
static void fork_parent(void) { pthread_mutex_unlock(&registry_lock); }
static void fork_child(void) { pthread_mutex_unlock(&registry_lock); }

static void __attribute__((constructor)) hazard_init(void)
{
    int rc = pthread_key_create(&exit_key, thread_exit);
#ifdef MPSCQ_TEST_HOOKS
    if (rc == 0 && atomic_load_explicit(&mpscq_test_fail_key_create, memory_order_relaxed)) {
        pthread_key_delete(exit_key);
        rc = -1;
    }
#endif
    key_ok = rc == 0;
    MPSCQ_HG_ATOMIC(slot_bits, sizeof slot_bits);
    pthread_atfork(fork_prepare, fork_parent, fork_child);
#if defined(MPSCQ_HAVE_ASM)
    /* Static TLS: the thread pointer offset is fixed for the module. */
    mpscq_tls_tpoff = (long)((char *)&mpscq_tls - (char *)__builtin_thread_pointer());
#endif
}

/* A shared library being unloaded: no thread may call thread_exit once
 * its code is gone (their slots are simply not given back). */
static void __attribute__((destructor)) hazard_fini(void)
{
    if (key_ok)
        pthread_key_delete(exit_key);
    key_ok = 0;
}

#ifdef MPSCQ_TEST_HOOKS
/* Test library: run the constructor's key creation again (after setting
 * mpscq_test_fail_key_create), to exercise the failure path. */
void mpscq_test_rerun_key_create(void);
void mpscq_test_rerun_key_create(void)
{
    if (key_ok)
        pthread_key_delete(exit_key);
    int rc = atomic_load_explicit(&mpscq_test_fail_key_create, memory_order_relaxed)
                 ? -1
                 : pthread_key_create(&exit_key, thread_exit);
    key_ok = rc == 0;
}
#endif

void mpscq_hp_register_queue(struct mpscq *q)
{
    pthread_mutex_lock(&registry_lock);
    MPSCQ_TEST_HOOK(MPSCQ_HOOK_REGISTRY_LOCKED, q, 0);
    q->live_next = registry_head;
    registry_head = q;
    pthread_mutex_unlock(&registry_lock);
}

void mpscq_hp_unregister_queue(struct mpscq *q)
{
    pthread_mutex_lock(&registry_lock);
    for (struct mpscq **pp = &registry_head; *pp; pp = &(*pp)->live_next) {
        if (*pp == q) {
            *pp = q->live_next;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
}

/* The record of `slot` in q, or NULL.  Acquire: pairs with the release
 * stores that publish a leaf and a record (register_record). */
static struct mpscq_hp_rec *dir_lookup(const struct mpscq *q, unsigned slot)
{
    struct mpscq *m = (struct mpscq *)q;
    struct mpscq_hp_leaf *leaf =
        atomic_load_explicit(&m->dir[slot >> MPSCQ_DIR_LEAF_BITS], memory_order_acquire);
    if (!leaf)
        return NULL;
    return atomic_load_explicit(&leaf->rec[slot & (MPSCQ_DIR_LEAF - 1)], memory_order_acquire);
}

/* Thread exit: hand every spare of this thread's records to the queues'
 * pools (never freed here: design.md s. 5), then give the slot back.  The
 * records stay, for the slot's next owner. */
static void thread_exit(void *unused)
{
    (void)unused;
    unsigned slot = my_slot;
    if (!slot)
        return;
    slot--;
    pthread_mutex_lock(&registry_lock);
    for (struct mpscq *q = registry_head; q; q = q->live_next) {
        struct mpscq_hp_rec *r = dir_lookup(q, slot);
        if (!r)
            continue;
        /* Owner-private list (relaxed). */
        while (r->spare) {
            struct mpscq_segment *s = r->spare;
            r->spare = atomic_load_explicit(&s->pool_next, memory_order_relaxed);
            mpscq_seg_give_back(q, s, 0);
        }
        r->nspare = 0;
    }
    pthread_mutex_unlock(&registry_lock);
    mpscq_tls.q = NULL;
    mpscq_tls.rec = NULL;
    /* The slot's consumer mark goes with the slot (consumer.c). */
    mpscq_tls.mark = &mpscq_mark_none;
    my_slot = 0;
    /* Release: everything this thread did with the slot's records happens
     * before the acquire fetch_or of the slot's next owner. */
    MPSCQ_HB_BEFORE(&slot_bits[slot / 64]);
    atomic_fetch_and_explicit(&slot_bits[slot / 64], ~(UINT64_C(1) << (slot % 64)),
                              memory_order_release);
}

/* Claim the lowest free slot: at most one fetch_or per bit that was seen
 * free and one load per word, so bounded (no retry of a lost race beyond
 * the bits of the word). */
static int claim_slot(void)
{
    for (unsigned w = 0; w < MPSCQ_MAX_THREADS / 64; w++) {
        /* Relaxed: a guess, validated by the fetch_or. */
        uint64_t v = atomic_load_explicit(&slot_bits[w], memory_order_relaxed);
        while (~v) {
            unsigned b = (unsigned)__builtin_ctzll(~v);
            uint64_t bit = UINT64_C(1) << b;
            MPSCQ_RMW(1);
            /* Acquire: the previous owner's release (thread_exit). */
            v = atomic_fetch_or_explicit(&slot_bits[w], bit, memory_order_acquire);
            if (!(v & bit)) {
                MPSCQ_HB_AFTER(&slot_bits[w]);
                my_slot = w * 64 + b + 1;
                if (key_ok)
                    pthread_setspecific(exit_key, (void *)1);
                return 1;
            }
            v |= bit;
        }
    }
    return 0;
}

/* Allocate a record of the given kind and publish it on q's list: one
 * XCHG of the head, then the link (MPSCQ_HP_LINKING until then). */
static struct mpscq_hp_rec *new_record(struct mpscq *q, int kind)
{
    struct mpscq_hp_rec *r = mpscq_alloc(q, sizeof *r);
    if (!r)
        return NULL;
    if (MPSCQ_UNLIKELY((uintptr_t)r & 15)) {
        mpscq_free(q, r, sizeof *r);
        mpscq_log(q, MPSCQ_LOG_ERROR, "alloc_fn returned memory that is not 16-byte aligned");
        return NULL;
    }
    memset(r, 0, sizeof *r);
    atomic_init(&r->hp, NULL);
    atomic_init(&r->hpc, NULL);
    atomic_init(&r->cdeq, 0);
    atomic_init(&r->next, MPSCQ_HP_LINKING);
    atomic_init(&r->kind, kind);
    MPSCQ_HG_ATOMIC_VAR(r->hp);
    MPSCQ_HG_ATOMIC_VAR(r->next);
    MPSCQ_HG_ATOMIC_VAR(r->kind);
    MPSCQ_HG_ATOMIC_VAR(r->hpc);
    MPSCQ_HG_ATOMIC_VAR(r->cdeq);
    /* acq_rel XCHG: release publishes r's initialized fields to the
     * consumer's acquire load of q->records (and to a later handle's walk
     * of the list); acquire makes the old head's contents visible before
     * we link to it. */
    MPSCQ_RMW(1);
    MPSCQ_HB_BEFORE(&q->records);
    struct mpscq_hp_rec *old = atomic_exchange_explicit(&q->records, r, memory_order_acq_rel);
    MPSCQ_HB_AFTER(&q->records);
    MPSCQ_TEST_HOOK(MPSCQ_HOOK_REC_LINKING, q, 0);
    /* Release: a scan that reads the link sees the older records. */
    MPSCQ_HB_BEFORE(&r->next);
    atomic_store_explicit(&r->next, old, memory_order_release);
    return r;
}

struct mpscq_hp_rec *mpscq_hp_acquire_handle(struct mpscq *q)
{
    /* Acquire on the head and each link: the records' fields are
     * initialized when seen (new_record's XCHG and link store). */
    for (struct mpscq_hp_rec *r = atomic_load_explicit(&q->records, memory_order_acquire);
         r && r != MPSCQ_HP_LINKING; r = atomic_load_explicit(&r->next, memory_order_acquire)) {
        int expect = MPSCQ_REC_HANDLE_FREE;
        /* Relaxed: a look before the CAS. */
        if (atomic_load_explicit(&r->kind, memory_order_relaxed) != expect)
            continue;
        MPSCQ_RMW(1);
        /* Acquire on success: the previous handle's release (its spares
         * are given back, hp is NULL).  Relaxed on failure: nothing is
         * read from a record we did not get. */
        if (atomic_compare_exchange_strong_explicit(&r->kind, &expect, MPSCQ_REC_HANDLE_BUSY,
                                                    memory_order_acquire, memory_order_relaxed)) {
            MPSCQ_HB_AFTER(&r->kind);
            return r;
        }
    }
    return new_record(q, MPSCQ_REC_HANDLE_BUSY);
}

void mpscq_hp_release_handle(struct mpscq *q, struct mpscq_hp_rec *r)
{
    /* The handle's user owns the spare list (relaxed, as in thread_exit). */
    while (r->spare) {
        struct mpscq_segment *s = r->spare;
        r->spare = atomic_load_explicit(&s->pool_next, memory_order_relaxed);
        mpscq_seg_give_back(q, s, 0);
    }
    r->nspare = 0;
    /* Release: all of the above, and the handle's last enqueue, happen
     * before the next handle's acquire CAS. */
    MPSCQ_HB_BEFORE(&r->kind);
    atomic_store_explicit(&r->kind, MPSCQ_REC_HANDLE_FREE, memory_order_release);
}

/* First enqueue of the slot's owner on q: allocate and publish a record.
 * Wait-free: at most one CAS for the leaf and one XCHG for the list. */
static struct mpscq_hp_rec *register_record(struct mpscq *q, unsigned slot)
{
    _Atomic(struct mpscq_hp_leaf *) *lp = &q->dir[slot >> MPSCQ_DIR_LEAF_BITS];
    /* Acquire: as in dir_lookup. */
    struct mpscq_hp_leaf *leaf = atomic_load_explicit(lp, memory_order_acquire);
    if (!leaf) {
        struct mpscq_hp_leaf *mine = mpscq_alloc(q, sizeof *mine);
        if (!mine)
            return NULL;
        for (unsigned i = 0; i < MPSCQ_DIR_LEAF; i++)
            atomic_init(&mine->rec[i], NULL);
        MPSCQ_HG_ATOMIC(mine, sizeof *mine);
        struct mpscq_hp_leaf *expect = NULL;
        /* acq_rel: release publishes the cleared leaf; acquire on failure
         * reads the winner's. */
        MPSCQ_RMW(1);
        MPSCQ_HB_BEFORE(lp);
        if (atomic_compare_exchange_strong_explicit(lp, &expect, mine, memory_order_acq_rel,
                                                    memory_order_acquire)) {
            leaf = mine;
        } else {
            MPSCQ_HB_AFTER(lp);
            mpscq_free(q, mine, sizeof *mine); /* never published */
            leaf = expect;
        }
    }
    struct mpscq_hp_rec *r = new_record(q, MPSCQ_REC_SLOT);
    if (!r)
        return NULL;
    /* Release: pairs with dir_lookup.  Only the slot's owner writes its
     * entry, so a plain store suffices. */
    atomic_store_explicit(&leaf->rec[slot & (MPSCQ_DIR_LEAF - 1)], r, memory_order_release);
    return r;
}

unsigned mpscq_hp_thread_slot(void)
{
    if (!my_slot)
        claim_slot();
    return my_slot;
}

struct mpscq_hp_rec *mpscq_hp_acquire_slow(struct mpscq *q)
{
    if (!my_slot && !claim_slot())
        return NULL;
    unsigned slot = my_slot - 1;
    struct mpscq_hp_rec *r = dir_lookup(q, slot);
    if (!r && !(r = register_record(q, slot)))
        return NULL;
    mpscq_tls.q = q;
    mpscq_tls.qid = q->qid;
    mpscq_tls.rec = r;
    return r;
}

int mpscq_hp_protected(const struct mpscq *q, const void *seg, int all_counts)
{
    /* Acquire on the head and each link, as in register_record. */
    struct mpscq_hp_rec *r = atomic_load_explicit(&q->records, memory_order_acquire);
    MPSCQ_HB_AFTER(&q->records);
    for (; r; r = atomic_load_explicit(&r->next, memory_order_acquire)) {
        /* A record being pushed hides the older ones for an instant: be
         * conservative and report "protected" (reclamation only waits). */
        if (r == MPSCQ_HP_LINKING)
            return 1;
        MPSCQ_HB_AFTER(&r->next);
        /* seq_cst, after the caller's seq_cst fence that follows the
         * unlink of seg: a producer's XCHG of its hazard is either seen
         * here, or it comes later in the total order and the producer's
         * next read of the entry point (hint, pool head) sees the unlink
         * (doc/design.md, "Reclamation"). */
        void *v = atomic_load_explicit(&r->hp, memory_order_seq_cst);
        MPSCQ_HB_AFTER(&r->hp);
        if (v == seg || (all_counts && v == MPSCQ_HP_ALL))
            return 1;
        /* A consumer's (many-consumer mode), under the same argument: its
         * seq_cst store is seen here, or its re-read of cseg sees the
         * unlink (consumers.c, protect). */
        if (q->many) {
            v = atomic_load_explicit(&r->hpc, memory_order_seq_cst);
            MPSCQ_HB_AFTER(&r->hpc);
            if (v == seg)
                return 1;
        }
    }
    return 0;
}

uint64_t mpscq_hp_sum_dequeued(const struct mpscq *q)
{
    /* The directory, not the list: a record being linked hides the older
     * ones from a walk of the list (MPSCQ_HP_LINKING), and a sum read
     * then went back, to 0 at worst.  Every count is in a slot's record
     * (count_take's record comes from mpscq_hp_acquire), and a record
     * stays in its entry until destroy, so each entry, once seen, is seen
     * by every later read of this thread (coherence), and a count only
     * grows: successive sums never go back.  Acquire on each leaf and
     * entry: pairs with register_record's release stores (the record's
     * fields are initialized when seen). */
    struct mpscq *m = (struct mpscq *)q;
    uint64_t sum = 0;
    for (unsigned i = 0; i < MPSCQ_DIR_TOP; i++) {
        struct mpscq_hp_leaf *leaf = atomic_load_explicit(&m->dir[i], memory_order_acquire);
        if (!leaf)
            continue;
        for (unsigned j = 0; j < MPSCQ_DIR_LEAF; j++) {
            struct mpscq_hp_rec *r = atomic_load_explicit(&leaf->rec[j], memory_order_acquire);
            /* Relaxed: a count, exact when every take happens before
             * this call (design.md 16, "Counts"). */
            if (r)
                sum += atomic_load_explicit(&r->cdeq, memory_order_relaxed);
        }
    }
    return sum;
}

void mpscq_hp_free_all(struct mpscq *q)
{
    /* Destroy runs alone (and q is out of the registry, so no exiting
     * thread reaches these records): relaxed would do. */
    struct mpscq_hp_rec *r = atomic_load_explicit(&q->records, memory_order_acquire);
    while (r) {
        struct mpscq_hp_rec *next = atomic_load_explicit(&r->next, memory_order_relaxed);
        while (r->spare) {
            struct mpscq_segment *s = r->spare;
            r->spare = atomic_load_explicit(&s->pool_next, memory_order_relaxed);
            mpscq_seg_free(q, s);
        }
        mpscq_free(q, r, sizeof *r);
        r = next;
    }
    atomic_store_explicit(&q->records, NULL, memory_order_relaxed);
    for (unsigned i = 0; i < MPSCQ_DIR_TOP; i++) {
        struct mpscq_hp_leaf *leaf = atomic_load_explicit(&q->dir[i], memory_order_relaxed);
        if (leaf)
            mpscq_free(q, leaf, sizeof *leaf);
        atomic_store_explicit(&q->dir[i], NULL, memory_order_relaxed);
    }
}
