/*
 * fuzz_ring.c - libFuzzer target: mpscq_ring against a model, then
 * against a region that a faulty process scribbles over.
 * `make fuzz FUZZ_SECONDS=N` runs it after fuzz_ops (clang).
 *
 * Input: byte 0 picks the ring (16 or 32 KiB, max_message 64, 200, 1024
 * or 4000; or, bit 3 set, 32 KiB and 12 000, records near three chunks
 * long), then one operation per byte with its arguments in the bytes
 * after it:
 *   write LEN          mpscq_ring_write of a message numbered in order
 *                      (INVAL while this thread's claim is open)
 *   reserve LEN        mpscq_ring_reserve (one claim open at a time)
 *   commit             fill the open claim, mpscq_ring_commit
 *   read CAP           mpscq_ring_read into a buffer of CAP bytes
 *   wait CAP           mpscq_ring_read_wait, timeout 1 us
 *   scribble O O O W V..  write 1, 2, 4 or 8 bytes at an offset of the
 *                      region (through a mapping of our own)
 *   reopen             mpscq_ring_open_fd of the region: INVAL or OK; the
 *                      new handle reads from then on (skipped while the
 *                      header says the ring is being created)
 *   close              mpscq_ring_close
 *   peek W             mpscq_ring_peek (mpscq_ring_peek_wait, 1 us, when W
 *                      is odd): the message stays held, in place
 *   release            mpscq_ring_release
 *
 * Until the first scribble the model is exact (and at the end of such an
 * input everything committed is drained, and, the ring open, every
 * chunk of it is accounted for and a message of max_message bytes goes
 * through): every message committed is
 * delivered once, whole, the messages of mpscq_ring_write in the order
 * written (a claim open meanwhile is passed), EMPTY only when nothing
 * committed is waiting, a buffer one byte short gives INVAL and keeps the
 * message, CLOSED only after close and once drained; a held message is
 * the same on every peek and its bytes stay as they were until it is
 * released (by release or by the next read).  After it, only what
 * the consumer promises a corrupt region: a status from the documented
 * set, a length within the buffer and max_message, a peeked message
 * inside the reader's mapping, and no access outside
 * the mapping (the library maps the region between guard pages, so such
 * an access faults; AddressSanitizer reports it).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mpscq.h"
#include "ring.h"   /* the header's layout, for reopen */

#define MAXQ 4096

struct model {
    /* Committed, not delivered: message numbers, in commit order. */
    uint32_t q[MAXQ];
    uint32_t len[MAXQ];
    size_t n;
    uint32_t last_write;    /* the number of the last write delivered, +1 */
    int closed;
};

static uint8_t payload_byte(uint32_t id, size_t i) { return (uint8_t)(id * 131u + i * 7u + 1u); }

static void fill(uint8_t *p, uint32_t id, size_t len)
{
    memcpy(p, &id, len < 4 ? len : 4);
    for (size_t i = 4; i < len; i++)
        p[i] = payload_byte(id, i);
}

static void model_push(struct model *m, uint32_t id, uint32_t len)
{
    if (m->n < MAXQ) {
        m->q[m->n] = id;
        m->len[m->n] = len;
        m->n++;
    }
}

/* The model's entry for a message read back, by its number and length
 * (a message shorter than 4 bytes carries only part of its number: the
 * first entry of that length whose number matches). */
static size_t model_find(const struct model *m, const uint8_t *p, size_t len)
{
    for (size_t k = 0; k < m->n; k++) {
        if (m->len[k] != len)
            continue;
        uint32_t id = m->q[k];
        if (memcmp(p, &id, len < 4 ? len : 4) != 0)
            continue;
        for (size_t i = 4; i < len; i++)
            if (p[i] != payload_byte(id, i))
                abort();            /* right header, wrong payload */
        return k;
    }
    return SIZE_MAX;
}

#define FLAG_RESERVED 0x80000000u   /* a message number from a claim */

/* A read or peek that delivered nothing answers a documented status
 * (TIMEOUT only from a waiting call; BUSY when the consumer role's owner
 * word was scribbled to name a live thread, which model_nothing refuses
 * before any scribble). */
static int nothing_status(int rc, int waited)
{
    return rc == MPSCQ_EMPTY || rc == MPSCQ_INVAL || rc == MPSCQ_CLOSED ||
           rc == MPSCQ_BUSY || (rc == MPSCQ_TIMEOUT && waited);
}

/* A read or peek that found nothing: EMPTY or TIMEOUT only while nothing
 * committed waits and the ring is open (an open claim or not: it is
 * delivered if committed later), CLOSED only once closed and drained. */
static void model_nothing(const struct model *m, int rc)
{
    if (rc == MPSCQ_BUSY)
        abort();        /* one thread, so never inside another call */
    if (rc == MPSCQ_CLOSED ? !m->closed || m->n != 0 : m->n != 0 || m->closed)
        abort();
}

/* A message delivered (read or peeked): it was committed and not yet
 * delivered, and the writes come in the order written. */
static void model_take(struct model *m, const uint8_t *p, size_t len)
{
    size_t k = model_find(m, p, len);
    if (k == SIZE_MAX)
        abort();        /* never written, or delivered twice */
    uint32_t id = m->q[k];
    if (!(id & FLAG_RESERVED)) {
        if (id < m->last_write)
            abort();    /* writes out of order */
        m->last_write = id;
    }
    memmove(&m->q[k], &m->q[k + 1], (m->n - k - 1) * sizeof m->q[0]);
    memmove(&m->len[k], &m->len[k + 1], (m->n - k - 1) * sizeof m->len[0]);
    m->n--;
}

static const size_t max_messages[4] = { 64, 200, 1024, 4000 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    mpscq_ring_config cfg;
    mpscq_ring_config_init(&cfg);
    cfg.bytes = (size_t)16384 << (data[0] & 1);
    cfg.max_message = max_messages[(data[0] >> 1) & 3];
    if (data[0] & 8) {          /* records longer than two chunks */
        cfg.bytes = 32768;
        cfg.max_message = 12000;
    }
    mpscq_ring_t *r = NULL;
    if (mpscq_ring_create(&r, NULL, &cfg) != MPSCQ_OK)
        abort();
    mpscq_ring_t *reader = r, *opened = NULL;
    size_t region = (size_t)lseek(mpscq_ring_fd(r), 0, SEEK_END);
    uint8_t *view = mmap(NULL, region, PROT_READ | PROT_WRITE, MAP_SHARED, mpscq_ring_fd(r), 0);
    if (view == MAP_FAILED)
        abort();

    static struct model m;
    memset(&m, 0, sizeof m);
    int scribbled = 0;
    uint32_t next_id = 1;
    void *open_buf = NULL;
    uint32_t open_id = 0, open_len = 0;
    static uint8_t msg[12000 + 1], out[12000 + 64], held_copy[12000];
    const void *held = NULL;     /* the reader's peeked message, if any */
    size_t held_len = 0;
    /* Until the first scribble a held message's bytes are as peeked. */
#define held_check()                                                        \
    do {                                                                    \
        if (held && !scribbled && memcmp(held, held_copy, held_len) != 0)   \
            abort();                                                        \
    } while (0)
    size_t i = 1;
#define ARG() (i < size ? data[i++] : 0)
    while (i < size) {
        uint8_t op = data[i++];
        switch (op % 10) {
        case 0: { /* write */
            size_t len = 1 + (size_t)ARG() * cfg.max_message / 256;
            uint32_t id = next_id++;
            fill(msg, id, len);
            int rc = mpscq_ring_write(r, msg, len);
            if (open_buf) {
                if (rc != MPSCQ_INVAL)
                    abort();        /* a thread has one claim open at a time */
                break;
            }
            if (rc != MPSCQ_OK && rc != MPSCQ_FULL && rc != MPSCQ_CLOSED)
                abort();
            if (!scribbled && (rc == MPSCQ_CLOSED) != m.closed)
                abort();
            if (rc == MPSCQ_OK)
                model_push(&m, id, (uint32_t)len);
            break;
        }
        case 1: { /* reserve */
            size_t len = 1 + (size_t)ARG() * cfg.max_message / 256;
            if (open_buf)
                break;
            void *b = NULL;
            int rc = mpscq_ring_reserve(r, len, &b);
            if (rc != MPSCQ_OK && rc != MPSCQ_FULL && rc != MPSCQ_CLOSED)
                abort();
            if (!scribbled && (rc == MPSCQ_CLOSED) != m.closed)
                abort();
            if (rc == MPSCQ_OK) {
                open_buf = b;
                open_id = (next_id++) | FLAG_RESERVED;
                open_len = (uint32_t)len;
            }
            break;
        }
        case 2: /* commit */
            if (!open_buf)
                break;
            fill(open_buf, open_id, open_len);
            if (mpscq_ring_commit(r, open_buf) != MPSCQ_OK)
                abort();
            model_push(&m, open_id, open_len);
            open_buf = NULL;
            break;
        case 3:   /* read */
        case 4: { /* read_wait */
            size_t cap = (size_t)ARG() * 17 * (cfg.max_message > 4096 ? 3 : 1);
            if (cap > sizeof out - 64)
                cap = sizeof out - 64;
            memset(out + cap, 0xa5, 64);
            held_check();           /* a read releases the held message */
            held = NULL;
            size_t len = SIZE_MAX;
            int rc = op % 10 == 3 ? mpscq_ring_read(reader, out, cap, &len)
                                  : mpscq_ring_read_wait(reader, out, cap, &len, 1000);
            for (size_t k = 0; k < 64; k++)
                if (out[cap + k] != 0xa5)
                    abort();        /* written past the buffer */
            if (rc == MPSCQ_OK) {
                if (len > cap || len > cfg.max_message || len == 0)
                    abort();
            } else if (!nothing_status(rc, op % 10 == 4)) {
                abort();
            }
            if (scribbled)
                break;
            if (rc == MPSCQ_OK) {
                model_take(&m, out, len);
            } else if (rc == MPSCQ_INVAL) {
                /* Only a buffer too small for a message waiting (the
                 * next one, which the model does not pin down). */
                size_t k = 0;
                while (k < m.n && m.len[k] <= cap)
                    k++;
                if (k == m.n)
                    abort();
            } else {
                model_nothing(&m, rc);
            }
            break;
        }
        case 5: { /* scribble */
            size_t off = (size_t)ARG() << 16;
            off |= (size_t)ARG() << 8;
            off |= ARG();
            unsigned w = 1u << (ARG() & 3);
            off %= region - 8;
            uint8_t v[8];
            for (unsigned k = 0; k < w; k++)
                v[k] = ARG();
            memcpy(view + off, v, w);
            scribbled = 1;
            break;
        }
        case 6: { /* reopen */
            /* A header that says "still being created" makes open wait
             * (2 s) before INVAL: check_ring.c tests that; here it would
             * only slow the fuzzing down. */
            const struct ring_header *h = (const struct ring_header *)(void *)view;
            uint32_t ready;
            memcpy(&ready, &h->ready, sizeof ready);
            if (memcmp(h->magic, "\0\0\0\0\0\0\0\0", 8) == 0 ||
                (memcmp(h->magic, RING_MAGIC, 8) == 0 && ready != RING_READY))
                break;
            int fd = dup(mpscq_ring_fd(r));
            if (fd < 0)
                abort();
            mpscq_ring_t *o = NULL;
            int rc = mpscq_ring_open_fd(&o, fd);   /* takes a copy of fd */
            close(fd);
            if (rc != MPSCQ_OK) {
                if (rc != MPSCQ_INVAL || !scribbled)
                    abort();        /* an intact ring always opens */
                break;
            }
            held_check();           /* before the old view goes */
            held = NULL;            /* the new handle is the consumer now */
            if (opened)
                mpscq_ring_detach(opened);
            opened = reader = o;
            break;
        }
        case 7: /* close */
            mpscq_ring_close(r);
            m.closed = 1;
            break;
        case 8: { /* peek */
            int wait = ARG() & 1;
            const void *d = NULL;
            size_t len = SIZE_MAX;
            int rc = wait ? mpscq_ring_peek_wait(reader, &d, &len, 1000)
                          : mpscq_ring_peek(reader, &d, &len);
            if (rc == MPSCQ_OK) {
                const uint8_t *p = d;
                if (len == 0 || len > cfg.max_message || p < reader->base ||
                    len > reader->size || (size_t)(p - reader->base) > reader->size - len)
                    abort();        /* outside the reader's mapping */
            } else if (!nothing_status(rc, wait)) {
                abort();
            }
            if (held) {
                if (rc == MPSCQ_BUSY && scribbled)
                    break;
                if (rc != MPSCQ_OK || d != held || len != held_len)
                    abort();        /* a held message is peeked again */
                held_check();
                break;
            }
            if (rc == MPSCQ_OK) {
                held = d;
                held_len = len;
                memcpy(held_copy, d, len);
            }
            if (scribbled)
                break;
            if (rc == MPSCQ_OK)
                model_take(&m, d, len);
            else if (rc == MPSCQ_INVAL)
                abort();            /* only for a corrupt region */
            else
                model_nothing(&m, rc);
            break;
        }
        case 9: { /* release */
            int rc = mpscq_ring_release(reader);
            /* Scribbled: a read that said BUSY kept a record held that
             * the model let go, and the role may be taken. */
            if (rc != (held ? MPSCQ_OK : MPSCQ_INVAL) &&
                !(scribbled && (rc == MPSCQ_BUSY || rc == MPSCQ_OK)))
                abort();
            held_check();
            held = NULL;
            break;
        }
        }
    }
#undef ARG
    /* The end, while the model is exact: commit the open claim, release
     * the held message and drain.  Every committed message comes out (a
     * read says EMPTY or CLOSED only with none left: model_nothing), and
     * every physical chunk is free or installed at or after the head's
     * chunk: none leaked, none pinned by what was delivered.  Then, open,
     * the ring takes a message of max_message bytes and gives it back. */
    if (!scribbled) {
        if (open_buf) {
            fill(open_buf, open_id, open_len);
            if (mpscq_ring_commit(r, open_buf) != MPSCQ_OK)
                abort();
            model_push(&m, open_id, open_len);
            open_buf = NULL;
        }
        if (held) {
            held_check();
            if (mpscq_ring_release(reader) != MPSCQ_OK)
                abort();
            held = NULL;
        }
        for (;;) {
            size_t len = SIZE_MAX;
            int rc = mpscq_ring_read(reader, out, sizeof out - 64, &len);
            if (rc != MPSCQ_OK) {
                model_nothing(&m, rc);
                break;
            }
            model_take(&m, out, len);
        }
        if (!m.closed) {
            if (ring_chunks_accounted(reader) != reader->K)
                abort();    /* a chunk lost, or pinned with nothing in it */
            uint32_t id = next_id++;
            size_t len = SIZE_MAX;
            fill(msg, id, cfg.max_message);
            if (mpscq_ring_write(r, msg, cfg.max_message) != MPSCQ_OK ||
                mpscq_ring_read(reader, out, sizeof out - 64, &len) != MPSCQ_OK ||
                len != cfg.max_message || memcmp(out, msg, len) != 0)
                abort();    /* the drained ring stalls */
        }
    }
#undef held_check
    if (open_buf)
        mpscq_ring_commit(r, open_buf);
    munmap(view, region);
    if (opened)
        mpscq_ring_detach(opened);
    mpscq_ring_detach(r);
    return 0;
}
