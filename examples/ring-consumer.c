/* ring-consumer.c - the consumer of a named interprocess ring.
 *
 *   ./examples/ring-consumer /demo [expected]
 *
 * Creates the ring /demo (or attaches to it when it exists), reads until
 * a producer closes it, and checks what it read: every producer's lines
 * in order ("PID SEQ TEXT", SEQ counting from 0).  With `expected`, it
 * also checks that many messages arrived.  Prints a JSON summary; exit
 * status 0 when everything checked.  Unlinks the name at the end.
 * It reads in place (mpscq_ring_peek_wait / mpscq_ring_release, the
 * zero-copy read): only each line's "PID SEQ" head is copied out.
 * Start it first, then ring-producer in other shells (see README).
 */
#include <mpscq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXP 64

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s /name [expected]\n", argv[0]);
        return 2;
    }
    const char *name = argv[1];
    long expected = argc > 2 ? atol(argv[2]) : -1;
    mpscq_ring_config cfg;
    mpscq_ring_config_init(&cfg);
    cfg.bytes = 1 << 20;          /* 1 MiB of messages */
    cfg.max_message = 256;
    mpscq_ring_t *r;
    int rc = mpscq_ring_create(&r, name, &cfg);
    if (rc == MPSCQ_EXIST)
        rc = mpscq_ring_open(&r, name);
    if (rc != MPSCQ_OK) {
        fprintf(stderr, "%s: %s\n", name, mpscq_strerror(rc));
        return 1;
    }
    struct seen { long pid, next; } seen[MAXP];
    int producers = 0, bad = 0;
    long total = 0;
    const void *msg;
    size_t len;
    /* Sleeps in the kernel while the ring is empty; a producer of any
     * process wakes it.  msg points into the ring until the release. */
    while ((rc = mpscq_ring_peek_wait(r, &msg, &len, -1)) == MPSCQ_OK) {
        /* Parse a copy: the ring's bytes are in memory every producer
         * process can write. */
        char head[32];
        size_t n = len < sizeof head - 1 ? len : sizeof head - 1;
        memcpy(head, msg, n);
        head[n] = 0;
        mpscq_ring_release(r);
        long pid, seq;
        if (sscanf(head, "%ld %ld", &pid, &seq) != 2) {
            bad++;
            continue;
        }
        int i = 0;
        while (i < producers && seen[i].pid != pid)
            i++;
        if (i == producers && producers < MAXP)
            seen[producers++] = (struct seen){ pid, 0 };
        if (i < producers) {
            if (seq != seen[i].next)
                bad++;                /* lost or out of its producer's order */
            seen[i].next = seq + 1;
        }
        total++;
    }
    if (rc == MPSCQ_BUSY) {
        /* Another process (or thread) is this ring's consumer: leave the
         * ring and its name to it. */
        fprintf(stderr, "%s: another consumer is reading this ring\n", name);
        mpscq_ring_detach(r);
        return 1;
    }
    int ok = rc == MPSCQ_CLOSED && !bad && (expected < 0 || total == expected);
    /* The ring's own counters: claims of producers that died before
     * committing are dropped, and counted. */
    struct mpscq_ring_stats st;
    mpscq_ring_stats(r, &st);
    printf("{\"messages\": %ld, \"producers\": %d, \"out_of_order\": %d, "
           "\"dropped_claims\": %llu, \"full_answers\": %llu, "
           "\"end\": \"%s\", \"verified\": %s}\n",
           total, producers, bad, st.dropped_claims, st.full, mpscq_strerror(rc),
           ok ? "true" : "false");
    mpscq_ring_detach(r);
    mpscq_ring_unlink(name);
    return ok ? 0 : 1;
}
