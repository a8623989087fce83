/* ring-producer.c - a producer process of a named interprocess ring.
 *
 *   ./examples/ring-producer /demo COUNT [--close]
 *
 * Attaches to the ring /demo (waiting up to 5 s for the consumer to
 * create it), writes COUNT lines "PID SEQ hello from PID", waiting while
 * the ring is full, then with --close closes the ring (the consumer then
 * reads what is left and stops).  Several may run at once.
 */
#include <mpscq.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s /name COUNT [--close]\n", argv[0]);
        return 2;
    }
    const char *name = argv[1];
    long count = atol(argv[2]);
    int do_close = argc > 3 && strcmp(argv[3], "--close") == 0;
    mpscq_ring_t *r = NULL;
    int rc = MPSCQ_INVAL;
    for (int i = 0; i < 500 && rc != MPSCQ_OK; i++) {
        rc = mpscq_ring_open(&r, name);
        if (rc != MPSCQ_OK)
            nanosleep(&(struct timespec){ 0, 10000000 }, NULL);   /* 10 ms */
    }
    if (rc != MPSCQ_OK) {
        fprintf(stderr, "%s: %s (start ring-consumer first)\n", name, mpscq_strerror(rc));
        return 1;
    }
    char line[128];
    for (long seq = 0; seq < count; seq++) {
        int n = snprintf(line, sizeof line, "%ld %ld hello from %ld", (long)getpid(), seq,
                         (long)getpid());
        /* Wait-free: FULL at once when there is no room; this program
         * chooses to yield and try again. */
        while ((rc = mpscq_ring_write(r, line, (size_t)n)) == MPSCQ_FULL)
            sched_yield();
        if (rc != MPSCQ_OK) {
            fprintf(stderr, "write: %s\n", mpscq_strerror(rc));
            return 1;
        }
    }
    if (do_close)
        mpscq_ring_close(r);
    mpscq_ring_detach(r);
    return 0;
}
