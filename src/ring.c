/*
 * ring.c - mpscq_ring's region: layout, create, attach, close, detach.
 * The producer side is ring_write.c, the consumer's ring_read.c; the
 * layout and its argument are in doc/ring-design.md.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "arch.h"
#include "ring.h"

#define RING_PAGE 4096u
/* An opener waits this long at most for a creator still initialising. */
#define RING_OPEN_WAIT_MS 2000

static uint64_t round_up(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

void mpscq_ring_config_init(mpscq_ring_config *cfg)
{
    if (cfg)
        memset(cfg, 0, sizeof *cfg);
}

/* Everything in the header follows from (bytes, max_message): an opener
 * recomputes it and compares, field by field. */
int mpscq_ring_layout(uint64_t bytes, uint64_t max_message, struct ring_header *h)
{
    if (bytes == 0 || bytes > MPSCQ_RING_BYTES_MAX || bytes % RING_PAGE ||
        max_message == 0 || max_message > MPSCQ_RING_MAX_MESSAGE_MAX)
        return MPSCQ_INVAL;
    uint64_t max_rec = ring_round_unit(RING_HDR + max_message);
    /* Chunks of 8 records of the largest size, and at least 16 KiB: a
     * chunk is retired and installed as a whole, so small ones cost the
     * consumer that bookkeeping every few messages; and a stopped claim
     * pins one (1/K of the ring). */
    uint64_t per = 8 * max_rec > 16384 ? 8 * max_rec : 16384;
    uint64_t k = bytes / per;
    if (k < 2)
        k = 2;
    if (k > 65535)
        k = 65535;
    uint64_t stride = (bytes / k) & ~(uint64_t)63;
    /* stride = state_bytes + S + max_rec, state_bytes = S/16 rounded up
     * to 64: the largest S (a multiple of 16) that fits. */
    if (stride < max_rec + 64 + 64)
        return MPSCQ_INVAL;
    uint64_t s = ((stride - max_rec - 64) * 16 / 17) & ~(uint64_t)(RING_UNIT - 1);
    while (s >= 64 && round_up(s / RING_UNIT, 64) + s + max_rec > stride)
        s -= RING_UNIT;
    if (s < 64)
        return MPSCQ_INVAL;
    uint64_t m = 64;
    while (m < 8 * k)
        m <<= 1;

    memset(h, 0, sizeof *h);
    memcpy(h->magic, RING_MAGIC, 8);
    h->version = RING_VERSION;
    h->header_size = RING_PAGE;
    h->bytes = bytes;
    h->max_message = (uint32_t)max_message;
    h->unit = RING_UNIT;
    h->nchunks = (uint32_t)k;
    h->chunk_bytes = (uint32_t)s;
    h->map_words = (uint32_t)m;
    h->nslots = RING_SLOTS;
    h->ngaps = RING_GAPS;
    h->max_rec = (uint32_t)max_rec;
    h->stride = stride;
    h->state_bytes = round_up(s / RING_UNIT, 64);
    uint64_t off = RING_PAGE;
    h->off_shared = off;
    _Static_assert(sizeof(struct ring_shared) == 192, "ring_shared is layout 1's three lines");
    off = round_up(off + sizeof(struct ring_shared), 64);
    h->off_map = off;
    off = round_up(off + m * 8, 64);
    h->off_slots = off;
    off = round_up(off + (uint64_t)RING_SLOTS * sizeof(struct ring_slot), 64);
    h->off_consumer = off;
    /* Layout version 1 gives the consumer's state 128 bytes (fields added
     * since fit in them: a region made by an older build reads them 0). */
    _Static_assert(sizeof(struct ring_consumer) <= 128, "ring_consumer outgrew layout 1");
    off = round_up(off + 128, 64);
    h->off_free = off;
    off = round_up(off + k * 4, 64);
    h->off_gaps = off;
    off = round_up(off + (uint64_t)RING_GAPS * sizeof(struct ring_gap), RING_PAGE);
    h->off_chunks = off;
    h->region_size = round_up(off + k * stride, RING_PAGE);
    return MPSCQ_OK;
}

/* ---- the process's handles (for fork and thread exit) ---------------- */

static pthread_mutex_t handles_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mpscq_ring *handles;
static _Atomic uint64_t next_id = 1;   /* relaxed: uniqueness only */

static void handle_link(struct mpscq_ring *r)
{
    pthread_mutex_lock(&handles_lock);
    r->next = handles;
    handles = r;
    pthread_mutex_unlock(&handles_lock);
}

static void handle_unlink(struct mpscq_ring *r)
{
    pthread_mutex_lock(&handles_lock);
    for (struct mpscq_ring **p = &handles; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            break;
        }
    pthread_mutex_unlock(&handles_lock);
}

/* Fork: the child's only thread holds no slot (the parent's threads own
 * the registrations it copied), so it forgets them; ring_write.c's
 * thread-local cache is invalidated by its own handler. */
void mpscq_ring_forget_regs_in_child(void)
{
    pthread_mutex_init(&handles_lock, NULL);
    for (struct mpscq_ring *r = handles; r; r = r->next) {
        pthread_mutex_init(&r->lock, NULL);
        struct ring_reg *g = r->regs;
        r->regs = NULL;
        while (g) {
            struct ring_reg *n = g->next;
            free(g);
            g = n;
        }
    }
}

/* Thread exit: release this thread's slot in every ring it wrote to. */
void mpscq_ring_release_thread(pid_t tid)
{
    pthread_mutex_lock(&handles_lock);
    for (struct mpscq_ring *r = handles; r; r = r->next) {
        pthread_mutex_lock(&r->lock);
        for (struct ring_reg **p = &r->regs; *p;) {
            struct ring_reg *g = *p;
            if (g->tid != tid) {
                p = &g->next;
                continue;
            }
            *p = g->next;
            struct ring_slot *sl = &r->slots[g->slot];
            /* Release: whatever this thread wrote before is visible to
             * whoever takes the slot next (acquire CAS in ring_write.c). */
            atomic_store_explicit(&sl->claim, RING_CLAIM_IDLE, memory_order_release);
            atomic_store_explicit(&sl->owner, 0, memory_order_release);
            free(g);
        }
        pthread_mutex_unlock(&r->lock);
    }
    pthread_mutex_unlock(&handles_lock);
}

/* ---- create / open ----------------------------------------------------- */

static int name_ok(const char *name)
{
    size_t n = strnlen(name, NAME_MAX + 2);
    return n >= 2 && n <= NAME_MAX && name[0] == '/' && !strchr(name + 1, '/');
}

static int errno_status(int e)
{
    return e == ENOMEM || e == ENOSPC || e == EMFILE || e == ENFILE ? MPSCQ_NOMEM : MPSCQ_INVAL;
}

/* Point the handle's fields at the region described by the (validated)
 * header h. */
static void handle_bind(struct mpscq_ring *r, const struct ring_header *h)
{
    mpscq_spin_init();            /* the consumer's catch-up spin (ring_read.c) */
    r->wait_spin_ns = MPSCQ_WAIT_SPIN_MAX_NS;
    r->hdr = (struct ring_header *)r->base;
    r->sh = (struct ring_shared *)(r->base + h->off_shared);
    r->map = (_Atomic uint64_t *)(r->base + h->off_map);
    r->slots = (struct ring_slot *)(r->base + h->off_slots);
    r->cs = (struct ring_consumer *)(r->base + h->off_consumer);
    r->free_list = (uint32_t *)(r->base + h->off_free);
    r->gaps = (struct ring_gap *)(r->base + h->off_gaps);
    r->chunks = r->base + h->off_chunks;
    r->S = h->chunk_bytes;
    r->K = h->nchunks;
    r->M = h->map_words;
    r->P = h->nslots;
    r->G = h->ngaps;
    r->stride = h->stride;
    r->state_bytes = h->state_bytes;
    r->max_message = h->max_message;
    r->max_rec = h->max_rec;
    r->s_inv = UINT64_MAX / r->S;
    r->mmask = r->M - 1;
    r->id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
    pthread_mutex_init(&r->lock, NULL);
    r->regs = NULL;
    /* Helgrind: these are accessed only with atomic operations (the
     * consumer's memset of a retired chunk's states aside, which no
     * producer touches until the install).  The records themselves stay
     * checked, through the happens-before edges at commit and install. */
    MPSCQ_HG_ATOMIC(r->sh, sizeof *r->sh);
    MPSCQ_HG_ATOMIC(r->map, r->M * sizeof r->map[0]);
    MPSCQ_HG_ATOMIC(r->slots, r->P * sizeof r->slots[0]);
    MPSCQ_HG_ATOMIC(&r->hdr->ready, sizeof r->hdr->ready);
    /* The consumer role's word, and the counters any process may read
     * (delivered .. refused_chunks, stored atomically). */
    MPSCQ_HG_ATOMIC(&r->cs->owner, sizeof r->cs->owner);
    MPSCQ_HG_ATOMIC(&r->cs->delivered, 4 * sizeof r->cs->delivered);
    for (uint64_t p = 0; p < r->K; p++)
        MPSCQ_HG_ATOMIC(ring_state(r, (uint32_t)p), r->state_bytes);
}

/* Initialise a fresh region (only this process can see it: the name is
 * ours by O_EXCL, and `ready` is still 0). */
static void region_init(struct mpscq_ring *r, const struct ring_header *h)
{
    memcpy(r->base, h, sizeof *h);
    struct ring_header *rh = (struct ring_header *)r->base;
    atomic_store_explicit(&rh->ready, 0, memory_order_relaxed);
    handle_bind(r, h);
    atomic_store_explicit(&r->sh->tail, 0, memory_order_relaxed);
    atomic_store_explicit(&r->sh->sleeping, 0, memory_order_relaxed);
    atomic_store_explicit(&r->sh->wake_seq, 0, memory_order_relaxed);
    atomic_store_explicit(&r->sh->close_pos, RING_UNKNOWN, memory_order_relaxed);
    /* Chunks 0 .. K-1 installed on physical chunks 0 .. K-1, the rest of
     * the map free for its first chunk number. */
    for (uint64_t i = 0; i < r->M; i++)
        atomic_store_explicit(&r->map[i],
                              i < r->K ? RING_MAPW(i, RING_MAP_INSTALLED, i)
                                       : RING_MAPW(i, RING_MAP_FREE, 0),
                              memory_order_relaxed);
    for (uint64_t i = 0; i < r->P; i++) {
        atomic_store_explicit(&r->slots[i].owner, 0, memory_order_relaxed);
        atomic_store_explicit(&r->slots[i].claim, RING_CLAIM_IDLE, memory_order_relaxed);
    }
    memset(r->cs, 0, sizeof *r->cs);
    r->cs->next_install = r->K;
    /* The state arrays start zero (ftruncate'd memory is). */
    /* Release: an opener that reads `ready` (acquire) sees all the above. */
    atomic_store_explicit(&rh->ready, RING_READY, memory_order_release);
}

/* The region is mapped between two inaccessible guard pages: a read or
 * write just outside it (a bug, since the consumer validates every
 * offset it takes from the region) faults instead of touching this
 * process's neighbouring memory, and the fuzz target (fuzz/fuzz_ring.c)
 * sees it. */
static size_t guard_size(void)
{
    long pg = sysconf(_SC_PAGESIZE);
    return pg > 0 ? (size_t)pg : RING_PAGE;
}

static int map_fd(struct mpscq_ring *r, size_t size)
{
    size_t g = guard_size();
    if (size > SIZE_MAX - 2 * g)
        return MPSCQ_NOMEM;
    uint8_t *res = mmap(NULL, size + 2 * g, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                        -1, 0);
    if (res == MAP_FAILED)
        return errno_status(errno);
    /* MAP_FIXED over our own reservation only. */
    void *p = mmap(res + g, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, r->fd, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        munmap(res, size + 2 * g);
        return errno_status(e);
    }
    r->base = p;
    r->size = size;
    return MPSCQ_OK;
}

static void unmap_region(struct mpscq_ring *r)
{
    size_t g = guard_size();
    munmap(r->base - g, r->size + 2 * g);
}

int mpscq_ring_create(mpscq_ring_t **rp, const char *name, const mpscq_ring_config *cfg)
{
    if (!rp)
        return MPSCQ_INVAL;
    mpscq_ring_config c;
    mpscq_ring_config_init(&c);
    if (cfg)
        c = *cfg;
    if (name && !name_ok(name))
        return MPSCQ_INVAL;
    if (c.bytes > MPSCQ_RING_BYTES_MAX || (c.mode & ~0777u))
        return MPSCQ_INVAL;
    uint64_t bytes = round_up(c.bytes ? c.bytes : MPSCQ_RING_BYTES_DEFAULT, RING_PAGE);
    uint64_t maxm = c.max_message ? c.max_message : MPSCQ_RING_MAX_MESSAGE_DEFAULT;
    struct ring_header h;
    int rc = mpscq_ring_layout(bytes, maxm, &h);
    if (rc)
        return rc;
    h.mode = c.mode ? c.mode : 0600;
    struct mpscq_ring *r = calloc(1, sizeof *r);
    if (!r)
        return MPSCQ_NOMEM;
    if (name) {
        r->fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, h.mode);
        if (r->fd < 0) {
            int e = errno;
            free(r);
            return e == EEXIST ? MPSCQ_EXIST : errno_status(e);
        }
        /* The mode as given, not as the umask left it. */
        if (fchmod(r->fd, h.mode) != 0) {
            rc = errno_status(errno);
            goto fail;
        }
    } else {
        r->fd = memfd_create("mpscq-ring", MFD_CLOEXEC);
        if (r->fd < 0) {
            rc = errno_status(errno);
            free(r);
            return rc;
        }
    }
    if (ftruncate(r->fd, (off_t)h.region_size) != 0) {
        rc = errno_status(errno);
        goto fail;
    }
    rc = map_fd(r, h.region_size);
    if (rc)
        goto fail;
    region_init(r, &h);
    handle_link(r);
    *rp = r;
    return MPSCQ_OK;
fail:
    close(r->fd);
    if (name)
        shm_unlink(name);
    free(r);
    return rc;
}

/* The region behind r->fd is a ring of this layout version: its header
 * matches the layout recomputed from its own (bytes, max_message). */
static int region_check(struct mpscq_ring *r)
{
    for (int waited = 0;; waited++) {
        struct stat st;
        struct ring_header h;
        memset(&h, 0, sizeof h);
        if (fstat(r->fd, &st) != 0)
            return MPSCQ_INVAL;
        ssize_t got = pread(r->fd, &h, sizeof h, 0);
        if (got < 0)
            return MPSCQ_INVAL;
        int blank = memcmp(h.magic, "\0\0\0\0\0\0\0\0", 8) == 0;
        if (!blank && memcmp(h.magic, RING_MAGIC, 8) != 0)
            return MPSCQ_INVAL;             /* not a ring */
        /* Relaxed: pread copied it; the mapping's acquire load below is
         * the one that orders the region's contents. */
        if (!blank && atomic_load_explicit(&h.ready, memory_order_relaxed) == RING_READY) {
            struct ring_header want;
            if ((size_t)got != sizeof h || h.version != RING_VERSION ||
                mpscq_ring_layout(h.bytes, h.max_message, &want) != MPSCQ_OK)
                return MPSCQ_INVAL;
            want.mode = h.mode;
            atomic_store_explicit(&want.ready, RING_READY, memory_order_relaxed);
            if (memcmp(&want, &h, sizeof h) != 0 || (uint64_t)st.st_size != h.region_size)
                return MPSCQ_INVAL;
            int rc = map_fd(r, h.region_size);
            if (rc)
                return rc;
            /* Acquire: pairs with the creator's release of `ready`. */
            struct ring_header *mh = (struct ring_header *)r->base;
            if (atomic_load_explicit(&mh->ready, memory_order_acquire) != RING_READY ||
                memcmp(mh, &want, offsetof(struct ring_header, ready)) != 0) {
                unmap_region(r);
                return MPSCQ_INVAL;
            }
            handle_bind(r, &h);
            return MPSCQ_OK;
        }
        /* Blank or not ready: a creator still initialising (it stores
         * `ready` last), or a region that never becomes a ring. */
        if (waited >= RING_OPEN_WAIT_MS)
            return MPSCQ_INVAL;
        struct timespec ms = { 0, 1000000 };
        nanosleep(&ms, NULL);
    }
}

int mpscq_ring_open_fd(mpscq_ring_t **rp, int fd)
{
    if (!rp || fd < 0)
        return MPSCQ_INVAL;
    struct mpscq_ring *r = calloc(1, sizeof *r);
    if (!r)
        return MPSCQ_NOMEM;
    r->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (r->fd < 0) {
        int rc = errno_status(errno);
        free(r);
        return rc;
    }
    int rc = region_check(r);
    if (rc) {
        close(r->fd);
        free(r);
        return rc;
    }
    handle_link(r);
    *rp = r;
    return MPSCQ_OK;
}

int mpscq_ring_open(mpscq_ring_t **rp, const char *name)
{
    if (!rp || !name || !name_ok(name))
        return MPSCQ_INVAL;
    int fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0)
        return errno_status(errno);
    int rc = mpscq_ring_open_fd(rp, fd);
    close(fd);
    return rc;
}

int mpscq_ring_fd(const mpscq_ring_t *r)
{
    return r ? r->fd : -1;
}

int mpscq_ring_unlink(const char *name)
{
    if (!name || !name_ok(name))
        return MPSCQ_INVAL;
    return shm_unlink(name) == 0 ? MPSCQ_OK : MPSCQ_INVAL;
}

void mpscq_ring_close(mpscq_ring_t *r)
{
    if (!r)
        return;
    /* seq_cst: a producer's claim either precedes this in tail's order
     * (below close_pos: delivered) or sees bit 63 (CLOSED, nothing kept). */
    uint64_t old = atomic_fetch_or_explicit(&r->sh->tail, RING_CLOSED, memory_order_seq_cst);
    if (!(old & RING_CLOSED)) {
        MPSCQ_TEST_HOOK(MPSCQ_HOOK_RING_CLOSING, NULL, old);
        /* Release: the consumer that reads it (acquire) knows the final
         * end; until then it treats the ring as open (ring_read.c). */
        atomic_store_explicit(&r->sh->close_pos, old, memory_order_release);
    }
    mpscq_ring_wake(r);
    mpscq_ring_wake_space(r);   /* waiting writers get CLOSED */
}

void mpscq_ring_detach(mpscq_ring_t *r)
{
    if (!r)
        return;
    handle_unlink(r);
    mpscq_ring_regs_release(r);
    unmap_region(r);
    close(r->fd);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
