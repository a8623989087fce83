/* ipc.h - mpscq-bench's "ipc" workload (ipc.c). */
#ifndef BENCH_IPC_H
#define BENCH_IPC_H

#include <stdint.h>
#include <stdio.h>

/* Producer processes and a consumer process through mpscq_ring, a pipe,
 * a SOCK_SEQPACKET socket, a POSIX message queue, a process-shared mutex
 * ring and a single-producer ring in shared memory: a table with the
 * issue's ratios on out.  0, or 1 when a run failed verification. */
int bench_ipc(FILE *out, int repeats, uint64_t messages);

#endif
