/*
 * status.c - logging, status strings, the implementation's name and the
 * library's version.
 */
#include "config.h"

#include <errno.h>
#include <unistd.h>

#include "arch.h"
#include "consumer.h"
#include "internal.h"

/* Logging */

void mpscq_log(const struct mpscq *q, int level, const char *msg)
{
    if (q && q->log_fn) {
        /* With the nested consumer mark inside a consumer call. */
        struct mpscq_consumer_mark *m = mpscq_callback_begin();
        q->log_fn(level, msg, q->log_arg);
        mpscq_callback_end(m);
        return;
    }
    /* One write(2) of a line built here: async-signal-safe (an enqueue
     * from a signal handler may log a contention warning; design.md
     * s. 13), and never interleaved with other threads' lines. */
    static const char *const names[] = { "debug", "info", "warning", "error" };
    const char *parts[] = { "libmpscq: ",
                            level >= 0 && level <= MPSCQ_LOG_ERROR ? names[level] : "log", ": ",
                            msg ? msg : "", "\n" };
    char line[256];
    size_t n = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        for (const char *c = parts[i]; *c && n < sizeof line - 1; c++)
            line[n++] = *c;
    if (line[n - 1] != '\n')
        line[n - 1] = '\n';
    int e = errno;
    ssize_t w = write(2, line, n);
    (void)w;
    errno = e;
}


void mpscq_warn_contention(struct mpscq *q, int consumer)
{
    /* Relaxed XCHG: only "who logs" is decided here. */
    if (atomic_exchange_explicit(&q->warned[consumer ? 1 : 0], 1, memory_order_relaxed))
        return;
    mpscq_log(q, MPSCQ_LOG_WARN,
              consumer ? "Dequeue experiencing high contention (1000 CAS failures)"
                       : "Enqueue experiencing high contention (1000 CAS failures)");
}

const char *mpscq_strerror(int status)
{
    switch (status) {
    case MPSCQ_OK: return "success";
    case MPSCQ_EMPTY: return "queue is empty";
    case MPSCQ_FULL: return "queue is full";
    case MPSCQ_CLOSED: return "queue is closed";
    case MPSCQ_TIMEOUT: return "timed out";
    case MPSCQ_NOMEM: return "out of memory";
    case MPSCQ_INVAL: return "invalid argument";
    case MPSCQ_BUSY: return "another thread is inside a consumer call";
    case MPSCQ_EXIST: return "a shared-memory region of that name exists";
    default: return "unknown status";
    }
}

const char *mpscq_implementation(void)
{
    return MPSCQ_IMPLEMENTATION;
}

const char *mpscq_version(void)
{
    return PACKAGE_VERSION;
}

