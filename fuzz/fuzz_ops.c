/*
 * fuzz_ops.c - libFuzzer target: random operation sequences against a
 * reference model.  `make fuzz FUZZ_SECONDS=N` (clang).
 *
 * Input: byte 0 picks the segment size (2 << (b % 7)), byte 1 the capacity
 * (0 = unbounded when b % 4 == 0, else b % 19), then one operation per
 * byte, with its argument in the next byte where it needs one.  The model
 * is a plain array FIFO with a capacity, a closed flag and the set of
 * states of the places owed to producers; every status,
 * every message and the size are compared after every operation.  The
 * queue is also the lower-priority member of a queue set whose other
 * member stays open and empty; some dequeues go through the set (its
 * idle-member shortcut against the queue's own state).  An
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
    /* Places freed by dequeues: c counted by the consumer since it last
     * returned them, p of those not yet visible to producers (p <= c <
     * batch <= 64).  A single dequeue adds one to both and returns all at
     * batch (c = p = 0); a run taken at once by mpscq_dequeue_batch adds
     * its length and returns all when c reaches batch; finding nothing
     * returns all; a producer in mpscq_enqueue_wait takes them (p = 0).
     * How a batch dequeue splits into runs (segment boundaries, refused
     * tickets) is the queue's business, so the model holds the set of
     * states the queue may be in: bit p of st[c].  An enqueue whose status
     * only some of them allow narrows the set to those. */
    uint64_t st[64];
    int closed;
};

static size_t msize(const struct model *m) { return m->tail - m->head; }

/* The states after a run of k taken at once, from states in. */
static void mrun(const struct model *m, const uint64_t *in, uint64_t *out, size_t k)
{
    for (size_t c = 0; c < m->batch; c++)
        for (size_t p = 0; p <= c; p++)
            if (in[c] >> p & 1) {
                if (c + k >= m->batch)
                    out[0] |= 1;
                else
                    out[c + k] |= (uint64_t)1 << (p + k);
            }
}

/* A dequeue took one message. */
static void mtook(struct model *m)
{
    uint64_t out[64] = {0};
    if (!m->cap)
        return;
    mrun(m, m->st, out, 1);
    memcpy(m->st, out, sizeof out);
}

/* mpscq_dequeue_batch took got (<= 16) messages in runs the model cannot
 * see: every split of got into runs. */
static void mtook_runs(struct model *m, size_t got)
{
    static uint64_t s[17][64];
    if (!m->cap)
        return;
    memset(s, 0, (got + 1) * sizeof s[0]);
    memcpy(s[0], m->st, sizeof m->st);
    for (size_t j = 1; j <= got; j++)
        for (size_t r = 1; r <= j; r++)
            mrun(m, s[j - r], s[j], r);
    memcpy(m->st, s[got], sizeof m->st);
}

/* Found nothing: every place owed is returned. */
static void mempty(struct model *m)
{
    memset(m->st, 0, sizeof m->st);
    m->st[0] = 1;
}

/* A waiting producer took every freed place. */
static void mtake(struct model *m)
{
    for (size_t c = 0; c < m->batch; c++)
        m->st[c] = m->st[c] ? 1 : 0;
}

/* The status an enqueue of n may have when not closed: OK when every
 * possible state leaves room, FULL when none does, else either (-1). */
static int mwant(const struct model *m, size_t n)
{
    int fits = 0, not = 0;
    if (!m->cap)
        return MPSCQ_OK;
    for (size_t c = 0; c < m->batch; c++)
        for (size_t p = 0; p <= c; p++)
            if (m->st[c] >> p & 1) {
                if (msize(m) + p + n <= m->cap)
                    fits = 1;
                else
                    not = 1;
            }
    return fits && !not ? MPSCQ_OK : !fits ? MPSCQ_FULL : -1;
}

/* The queue said rc (OK or FULL) to an enqueue of n: keep the states that
 * allow it; the rc must be one of them. */
static int mnarrow(struct model *m, size_t n, int rc)
{
    int want = mwant(m, n);
    if (!(rc == want || (want < 0 && (rc == MPSCQ_OK || rc == MPSCQ_FULL))))
        return 0;
    if (m->cap)
        for (size_t c = 0; c < m->batch; c++)
            for (size_t p = 0; p <= c; p++)
                if (m->st[c] >> p & 1 && (msize(m) + p + n <= m->cap) != (rc == MPSCQ_OK))
                    m->st[c] &= ~((uint64_t)1 << p);
    return 1;
}

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
    mpscq_t *q, *idle;
    CHECK(mpscq_create(&q, &c) == MPSCQ_OK);
    CHECK(mpscq_create(&idle, NULL) == MPSCQ_OK);
    mpscq_set_t *set;
    CHECK(mpscq_set_create(&set) == MPSCQ_OK);
    CHECK(mpscq_set_add(set, idle, 0) == MPSCQ_OK);
    CHECK(mpscq_set_add(set, q, 1) == MPSCQ_OK);
    static struct model m;
    memset(&m, 0, sizeof m);
    m.cap = c.capacity;
    m.batch = m.cap / 8 < 1 ? 1 : m.cap / 8 > 64 ? 64 : m.cap / 8;
    mempty(&m); /* none owed */
    uintptr_t next = 1;
    for (size_t i = 2; i < size && m.tail + 8 < MODEL_MAX; i++) {
        uint8_t op = data[i] % 8;
        uint8_t arg = i + 1 < size ? data[i + 1] : 0;
        switch (op) {
        case 0: case 1: case 2: { /* enqueue (NULL sometimes) */
            uintptr_t v = arg % 13 == 0 ? 0 : next++;
            int rc = mpscq_enqueue(q, (void *)v);
            if (m.closed)
                CHECK(rc == MPSCQ_CLOSED);
            else
                CHECK(mnarrow(&m, 1, rc));
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
            if (n == 0)
                CHECK(rc == MPSCQ_OK);
            else if (m.cap && n > m.cap)
                CHECK(rc == MPSCQ_INVAL);
            else if (m.closed)
                CHECK(rc == MPSCQ_CLOSED);
            else
                CHECK(mnarrow(&m, n, rc));
            if (rc == MPSCQ_OK)
                for (size_t k = 0; k < n; k++)
                    m.v[m.tail++] = (uintptr_t)b[k];
            i++;
            break;
        }
        case 4: case 5: { /* dequeue, or (5) through the set */
            void *v = (void *)0x1;
            mpscq_t *from = NULL;
            int rc = op == 4 ? mpscq_dequeue(q, &v) : mpscq_set_dequeue_wait(set, &from, &v, 0);
            if (msize(&m)) {
                CHECK(rc == MPSCQ_OK);
                CHECK((uintptr_t)v == m.v[m.head++]);
                CHECK(op == 4 || from == q);
                mtook(&m);
            } else {
                /* The set's other member is open: EMPTY, not CLOSED. */
                CHECK(rc == (m.closed && op == 4 ? MPSCQ_CLOSED : MPSCQ_EMPTY));
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
            for (size_t k = 0; k < got; k++)
                CHECK((uintptr_t)out[k] == m.v[m.head++]);
            mtook_runs(&m, got);
            if (got < max) /* it stopped at an EMPTY (or CLOSED) */
                mempty(&m);
            i++;
            break;
        }
        case 7: /* close (rarely), or one of the waiting calls with no wait */
            switch (arg % 16) {
            case 0:
                mpscq_close(q);
                m.closed = 1;
                CHECK(mpscq_is_closed(q));
                break;
            case 1: case 2: case 3: case 4: {
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
                break;
            }
            case 5: case 6: case 7: case 8: { /* peek: the next dequeue's */
                void *v = (void *)0x1;
                int rc = mpscq_peek(q, &v);
                if (msize(&m)) {
                    CHECK(rc == MPSCQ_OK);
                    CHECK((uintptr_t)v == m.v[m.head]);
                } else {
                    CHECK(rc == (m.closed ? MPSCQ_CLOSED : MPSCQ_EMPTY));
                    CHECK(v == (void *)0x1);
                    mempty(&m);
                }
                break;
            }
            case 9: case 10: case 11: case 12: { /* batch wait of 1..16 */
                void *out[16];
                size_t max = 1 + arg / 16, got = 99;
                int rc = mpscq_dequeue_batch_wait(q, out, max, &got, 0);
                if (msize(&m)) {
                    size_t want = msize(&m) < max ? msize(&m) : max;
                    CHECK(rc == MPSCQ_OK && got == want);
                    for (size_t k = 0; k < got; k++)
                        CHECK((uintptr_t)out[k] == m.v[m.head++]);
                    mtook(&m);  /* the first alone, then a batch */
                    mtook_runs(&m, got - 1);
                    if (got < max)
                        mempty(&m);
                } else {
                    CHECK(rc == (m.closed ? MPSCQ_CLOSED : MPSCQ_TIMEOUT) && got == 0);
                    mempty(&m);
                }
                break;
            }
            default: { /* enqueue_wait, no wait */
                uintptr_t v = next++;
                int rc = mpscq_enqueue_wait(q, (void *)v, 0);
                if (m.closed) {
                    CHECK(rc == MPSCQ_CLOSED);
                    break;
                }
                if (!m.cap) {
                    CHECK(rc == MPSCQ_OK);
                    m.v[m.tail++] = v;
                    break;
                }
                /* A first try; when FULL, the waiter takes the freed
                 * places (p = 0 in every state) and tries once more,
                 * which fits when the queue is not full. */
                uint64_t fit[64], nofit[64];
                int any_nofit = 0;
                for (size_t c = 0; c < m.batch; c++) {
                    fit[c] = nofit[c] = 0;
                    for (size_t p = 0; p <= c; p++)
                        if (m.st[c] >> p & 1) {
                            if (msize(&m) + p + 1 <= m.cap)
                                fit[c] |= (uint64_t)1 << p;
                            else
                                nofit[c] |= (uint64_t)1 << p, any_nofit = 1;
                        }
                }
                int second = msize(&m) + 1 <= m.cap;
                if (rc == MPSCQ_OK) {
                    for (size_t c = 0; c < m.batch; c++)
                        m.st[c] = fit[c] | (second && nofit[c] ? 1 : 0);
                    int some = 0;
                    for (size_t c = 0; c < m.batch; c++)
                        some |= m.st[c] != 0;
                    CHECK(some);
                    m.v[m.tail++] = v;
                } else {
                    CHECK(rc == MPSCQ_TIMEOUT && any_nofit && !second);
                    for (size_t c = 0; c < m.batch; c++)
                        m.st[c] = nofit[c] ? 1 : 0;
                }
                break;
            }
            }
            i++;
            break;
        }
        CHECK(mpscq_size(q) == msize(&m));
    }
    mpscq_set_destroy(set);
    mpscq_destroy(q, NULL, NULL);
    mpscq_destroy(idle, NULL, NULL);
    return 0;
}
