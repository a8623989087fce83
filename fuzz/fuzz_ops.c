/*
 * fuzz_ops.c - libFuzzer target: random operation sequences against a
 * reference model.  `make fuzz FUZZ_SECONDS=N` (clang).
 *
 * Input: byte 0 picks the segment size (2 << (b % 7)), byte 1 the capacity
 * (0 = unbounded when b % 4 == 0, else b % 19), then one operation per
 * byte, with its argument in the next byte where it needs one.  The model
 * is a plain array FIFO with a capacity and a closed flag; every status,
 * every message and the size are compared after every operation.  An
 * input stops when the model's array (4096 messages) is nearly full.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mpscq.h"

#define MODEL_MAX 4096

struct model {
    uintptr_t v[MODEL_MAX];
    size_t head, tail; /* indices into v, monotonic */
    size_t cap;
    size_t batch;   /* places the consumer returns at once (design.md s. 6) */
    size_t debt;    /* places freed by dequeues, not yet returned */
    int closed;
};

static size_t msize(const struct model *m) { return m->tail - m->head; }

/* Free places as producers see them: the capacity less what is queued
 * and what the consumer has freed but not yet returned. */
static size_t mfree(const struct model *m) { return m->cap - msize(m) - m->debt; }

/* A dequeue took a message / found nothing. */
static void mtook(struct model *m)
{
    if (m->cap && ++m->debt >= m->batch)
        m->debt = 0;
}
static void mempty(struct model *m) { m->debt = 0; }

#define CHECK(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    mpscq_config c;
    mpscq_config_init(&c);
    c.segment_slots = (size_t)2 << (data[0] % 7);
    c.capacity = data[1] % 4 == 0 ? 0 : data[1] % 19;
    mpscq_t *q;
    CHECK(mpscq_create(&q, &c) == MPSCQ_OK);
    static struct model m;
    memset(&m, 0, sizeof m);
    m.cap = c.capacity;
    m.batch = m.cap / 8 < 1 ? 1 : m.cap / 8 > 64 ? 64 : m.cap / 8;
    uintptr_t next = 1;
    for (size_t i = 2; i < size && m.tail + 8 < MODEL_MAX; i++) {
        uint8_t op = data[i] % 8;
        uint8_t arg = i + 1 < size ? data[i + 1] : 0;
        switch (op) {
        case 0: case 1: case 2: { /* enqueue (NULL sometimes) */
            uintptr_t v = arg % 13 == 0 ? 0 : next++;
            int rc = mpscq_enqueue(q, (void *)v);
            int want = m.closed ? MPSCQ_CLOSED
                     : m.cap && mfree(&m) < 1 ? MPSCQ_FULL
                     : MPSCQ_OK;
            CHECK(rc == want);
            if (rc == MPSCQ_OK)
                m.v[m.tail++] = v;
            break;
        }
        case 3: { /* batch of 0..7 */
            size_t n = arg % 8;
            void *b[8];
            for (size_t k = 0; k < n; k++)
                b[k] = (void *)next++;
            int rc = mpscq_enqueue_batch(q, b, n);
            int want;
            if (n == 0)
                want = MPSCQ_OK;
            else if (m.cap && n > m.cap)
                want = MPSCQ_INVAL;
            else if (m.closed)
                want = MPSCQ_CLOSED;
            else if (m.cap && mfree(&m) < n)
                want = MPSCQ_FULL;
            else
                want = MPSCQ_OK;
            CHECK(rc == want);
            if (rc == MPSCQ_OK)
                for (size_t k = 0; k < n; k++)
                    m.v[m.tail++] = (uintptr_t)b[k];
            i++;
            break;
        }
        case 4: case 5: { /* dequeue */
            void *v = (void *)0x1;
            int rc = mpscq_dequeue(q, &v);
            if (msize(&m)) {
                CHECK(rc == MPSCQ_OK);
                CHECK((uintptr_t)v == m.v[m.head++]);
                mtook(&m);
            } else {
                CHECK(rc == (m.closed ? MPSCQ_CLOSED : MPSCQ_EMPTY));
                CHECK(v == (void *)0x1);
                mempty(&m);
            }
            break;
        }
        case 6: { /* dequeue_batch of 0..15 */
            void *out[16];
            size_t max = arg % 16;
            size_t got = mpscq_dequeue_batch(q, out, max);
            size_t want = msize(&m) < max ? msize(&m) : max;
            CHECK(got == want);
            for (size_t k = 0; k < got; k++) {
                CHECK((uintptr_t)out[k] == m.v[m.head++]);
                mtook(&m);
            }
            if (got < max) /* it stopped at an EMPTY (or CLOSED) */
                mempty(&m);
            i++;
            break;
        }
        case 7: /* close, rarely; else a zero-timeout wait */
            if (arg % 16 == 0) {
                mpscq_close(q);
                m.closed = 1;
                CHECK(mpscq_is_closed(q));
            } else {
                void *v;
                int rc = mpscq_dequeue_wait(q, &v, 0);
                if (msize(&m)) {
                    CHECK(rc == MPSCQ_OK);
                    CHECK((uintptr_t)v == m.v[m.head++]);
                    mtook(&m);
                } else {
                    CHECK(rc == (m.closed ? MPSCQ_CLOSED : MPSCQ_TIMEOUT));
                    mempty(&m);
                }
            }
            i++;
            break;
        }
        CHECK(mpscq_size(q) == msize(&m));
    }
    mpscq_destroy(q, NULL, NULL);
    return 0;
}
