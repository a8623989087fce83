/*
 * coherence.h - what one cache line costs to pass between two CPUs, as
 * mpscq-bench measures it before and after its runs.
 *
 * A queue whose producers share lines (libmpscq's ticket counter and slot
 * arrays, wfcqueue's tail, rte_ring's head) pays this cost per message
 * when its threads run on different CPUs; one whose producers each own a
 * sub-queue (moodycamel with tokens) mostly does not.  On a virtual
 * machine the figure moves by 4x when the host moves its vCPUs, and the
 * ratios between such queues move with it (doc/performance.md), so the
 * benchmark prints it beside them.
 */
#ifndef MPSCQ_BENCH_COHERENCE_H
#define MPSCQ_BENCH_COHERENCE_H

/* The median, over 5 trials, of the nanoseconds one round trip of a cache
 * line takes between two threads pinned to the first two CPUs this
 * process may use (a store seen by the other thread, its answer seen
 * back).  About 30 ms.  -1 when the process may use fewer than two CPUs,
 * a thread cannot be pinned or started, or the partner did not answer
 * within the trial's time limit (a CPU taken by something else). */
double bench_line_round_trip_ns(void);

#endif
