/*
 * mpscq-bench - libmpscq against a mutex + ring and the established
 * lock-free queues, measured side by side in one run, every run verified.
 * See mpscq-bench(1).
 */
#include "config.h"
#include "adapter.h"
#include "clock.h"
#include "coherence.h"
#include "report.h"
#include "ipc.h"
#include "workload.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <mpscq.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_COLS 16
/* The "consumers" workload's consumer threads (issue 13: 8P4C, 16P4C). */
#define BENCH_MANY_CONSUMERS 4u

struct options {
    unsigned producers[MAX_COLS], nproducers;
    double rates[MAX_COLS];
    unsigned nrates;
    double sleep_rates[MAX_COLS];
    unsigned nsleep_rates;
    uint64_t messages;
    double max_seconds;
    int repeats;
    size_t capacity;
    unsigned batch;
    unsigned lat_producers;
    double lat_seconds;
    double burst_rate, burst_seconds;
    const char *workloads;
    const char *queues;
    const char *json, *plot;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mpscq-bench [options]\n"
            "  -p, --producers LIST     producer counts (default 1,2,4,8,16)\n"
            "  -n, --messages N         messages per throughput run (default 2000000)\n"
            "  -t, --seconds S          stop a throughput run after S seconds (default 5)\n"
            "  -r, --repeats N          runs of every configuration (default 5)\n"
            "  -q, --queues LIST        queues to run (default all; see --list)\n"
            "  -w, --workloads LIST     throughput,bounded,batch,latency,sleeping,burst,probe,\n"
            "                           consumers,ipc (ipc: producer processes through\n"
            "                           mpscq_ring, pipe, socket, mqueue, shared rings)\n"
            "                           (default all)\n"
            "  -c, --capacity N         bounded capacity (default 1024)\n"
            "  -b, --batch N            batch size (default 32)\n"
            "      --rates LIST         latency mode offered msg/s (default 10000,100000,1000000)\n"
            "      --sleeping-rates LIST  sleeping-consumer mode msg/s (default 100000)\n"
            "      --latency-producers N  producers in latency/burst/probe modes (default 8)\n"
            "      --latency-seconds S  length of a latency run (default 1)\n"
            "      --burst-rate R       burst mode msg/s (default 500000)\n"
            "      --burst-seconds S    burst length (default 1)\n"
            "      --quick              8 producers, 3 repeats, short runs (the README demo)\n"
            "      --json FILE          write every figure as JSON ('-' = stdout)\n"
            "      --plot FILE.svg      draw throughput against producers (needs gnuplot)\n"
            "  -l, --list               list the queues compiled in and exit\n"
            "  -h, --help               this text\n"
            "      --version            print the version and exit\n"
            "Exit status: 0 all runs verified, 1 a delivery error, 2 bad usage,\n"
            "3 a queue could not run or an output could not be written.\n");
}

static int parse_list(const char *s, double *out, unsigned max, double lo, double hi)
{
    unsigned n = 0;
    while (*s) {
        char *end;
        double v = strtod(s, &end);
        if (end == s || v < lo || v > hi || n == max)
            return -1;
        out[n++] = v;
        s = end;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return (int)n;
}

static int parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int in_list(const char *list, const char *word)
{
    if (!list)
        return 1;
    size_t n = strlen(word);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, word, n) == 0)
            return 1;
        p += len + (e != NULL);
    }
    return 0;
}

/* Every name in `list` must be one of `known` (NULL-terminated). */
static int check_list(const char *list, const char *const *known, const char *what)
{
    if (!list)
        return 0;
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int ok = 0;
        for (int i = 0; known[i]; i++)
            ok |= strlen(known[i]) == len && strncmp(known[i], p, len) == 0;
        if (!ok) {
            fprintf(stderr, "mpscq-bench: unknown %s '%.*s'\n", what, (int)len, p);
            return -1;
        }
        p += len + (e != NULL);
    }
    return 0;
}

/* ---- progress on stderr -------------------------------------------- */
static uint64_t progress_t0;
static int progress_tty, progress_shown;

static void progress(unsigned done, unsigned total, const char *fmt, ...)
{
    if (!progress_tty || bench_now_ns() - progress_t0 < 1000000000u)
        return;
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\r\033[K[%u/%u] %s", done, total, msg);
    progress_shown = 1;
}

/* The cache line round trip (coherence.h), printed before and after the
 * runs: on a virtual machine it moves when the host moves the vCPUs, and
 * the ratios between queues that share lines and queues that do not move
 * with it. */
static void print_line_rt(const char *when, double ns)
{
    if (ns < 0)
        printf("Cache line round trip between two CPUs, %s: not measured (fewer than two CPUs "
               "to pin, or no answer within 0.2 s)\n", when);
    else
        printf("Cache line round trip between two CPUs, %s: %.0f ns (ratios against queues "
               "whose producers share no line move with it: doc/performance.md)\n", when, ns);
}

static void progress_end(void)
{
    if (progress_shown)
        fprintf(stderr, "\r\033[K");
}

/* ---- every run in a child process ------------------------------------
 * A fresh process per run: the heap and RSS figures see one queue only,
 * and a queue that stalls (DPDK's MP ring waits for a preempted
 * producer) is killed after its deadline instead of hanging the
 * benchmark. */
struct job {
    int probe;
    struct bench_cfg cfg;
    size_t capacity;
    struct {
        struct bench_result r;
        struct bench_pct full, empty;
        int rc;
    } out;
};

static void job_main(struct job *j)
{
    if (j->probe)
        j->out.rc = bench_probe(j->cfg.a, j->cfg.producers, j->capacity, 20000, &j->out.full,
                                &j->out.empty);
    else
        j->out.rc = bench_run(&j->cfg, &j->out.r);
}

/* 0: j->out filled; 1: killed at the deadline; -1: the child failed. */
static int isolate(struct job *j, double timeout_s)
{
    int fd[2];
    if (pipe(fd) != 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        close(fd[0]);
        job_main(j);
        const char *p = (const char *)&j->out;
        size_t left = sizeof j->out;
        while (left) {
            ssize_t n = write(fd[1], p, left);
            if (n <= 0 && errno != EINTR)
                _exit(3);
            if (n > 0) {
                p += n;
                left -= (size_t)n;
            }
        }
        _exit(0);
    }
    close(fd[1]);
    uint64_t deadline = bench_now_ns() + (uint64_t)(timeout_s * 1e9);
    size_t got = 0;
    int timed_out = 0;
    while (got < sizeof j->out) {
        uint64_t now = bench_now_ns();
        if (now >= deadline) {
            timed_out = 1;
            break;
        }
        struct pollfd pfd = { fd[0], POLLIN, 0 };
        int rc = poll(&pfd, 1, (int)((deadline - now) / 1000000 + 1));
        if (rc < 0 && errno != EINTR)
            break;
        if (rc <= 0)
            continue;
        ssize_t n = read(fd[0], (char *)&j->out + got, sizeof j->out - got);
        if (n == 0 || (n < 0 && errno != EINTR))
            break;
        if (n > 0)
            got += (size_t)n;
    }
    if (got < sizeof j->out)
        kill(pid, SIGKILL);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    close(fd[0]);
    if (got == sizeof j->out)
        return 0;
    return timed_out ? 1 : -1;
}

/* ---- tables ---------------------------------------------------------- */

static double *slot(int repeats)
{
    double *p = calloc((size_t)repeats, sizeof *p);
    if (!p) {
        fprintf(stderr, "mpscq-bench: out of memory\n");
        exit(3);
    }
    return p;
}

static void add_table(struct bench_report *rep, const char *id, const char *title,
                      enum bench_kind kind, unsigned ncols, const unsigned *producers,
                      const double *rates)
{
    struct bench_table *tb = &rep->tables[rep->ntables++];
    memset(tb, 0, sizeof *tb);
    tb->id = id;
    tb->title = strdup(title);
    tb->kind = kind;
    tb->ncols = ncols;
    tb->cells = calloc((size_t)rep->nqueues * ncols, sizeof *tb->cells);
    if (!tb->cells || !tb->title)
        exit(3);
    for (unsigned q = 0; q < rep->nqueues; q++)
        for (unsigned j = 0; j < ncols; j++) {
            struct bench_cell *c = &tb->cells[q * ncols + j];
            c->a = rep->queues[q];
            c->producers = producers[j];
            c->rate = rates ? rates[j] : 0;
            c->mmsgs = slot(rep->repeats);
            c->cpu_ns = slot(rep->repeats);
            c->cpu_pct = slot(rep->repeats);
            c->ccpu_pct = slot(rep->repeats);
            c->bytes = slot(rep->repeats);
            c->rss_before = slot(rep->repeats);
            c->rss_peak = slot(rep->repeats);
            c->rss_after = slot(rep->repeats);
            c->drain = slot(rep->repeats);
            for (int k = 0; k < 5; k++)
                for (int m = 0; m < 4; m++)
                    c->lat[k][m] = slot(rep->repeats);
        }
}

static void record_pct(struct bench_cell *c, int k, int run, const struct bench_pct *p)
{
    c->lat[k][0][run] = (double)p->p50;
    c->lat[k][1][run] = (double)p->p99;
    c->lat[k][2][run] = (double)p->p999;
    c->lat[k][3][run] = (double)p->max;
}

static int cell_skip(struct bench_table *tb, struct bench_cell *c)
{
    unsigned f = c->a->flags;
    if (tb->capacity && !(f & BENCH_BOUNDED))
        c->skip_reason = "n/a: no bounded mode";
    else if (tb->kind == KIND_PROBE && !(f & BENCH_BOUNDED))
        c->skip_reason = "n/a: no bounded mode";
    else if (tb->kind == KIND_PROBE && (f & BENCH_ROUNDED_CAPACITY))
        c->skip_reason = "n/a: capacity rounded up";
    else if ((f & BENCH_ONE_PRODUCER) && c->producers > 1)
        c->skip_reason = "n/a: one producer only";
    else if (tb->consumers > 1 && !c->a->dequeue_many)
        c->skip_reason = "n/a: one consumer only";
    c->skipped = c->skip_reason != NULL;
    return c->skipped;
}

int main(int argc, char **argv)
{
    struct options o = {
        .producers = { 1, 2, 4, 8, 16 }, .nproducers = 5,
        .rates = { 10000, 100000, 1000000 }, .nrates = 3,
        .sleep_rates = { 100000 }, .nsleep_rates = 1,
        .messages = 2000000, .max_seconds = 5, .repeats = 5, .capacity = 1024,
        .batch = 32, .lat_producers = 8, .lat_seconds = 1, .burst_rate = 500000,
        .burst_seconds = 1,
    };
    enum { O_RATES = 256, O_SLEEP_RATES, O_LATP, O_LATS, O_BR, O_BS, O_QUICK, O_JSON,
           O_PLOT, O_VERSION };
    static const struct option longopts[] = {
        { "producers", 1, 0, 'p' }, { "messages", 1, 0, 'n' }, { "seconds", 1, 0, 't' },
        { "repeats", 1, 0, 'r' }, { "queues", 1, 0, 'q' }, { "workloads", 1, 0, 'w' },
        { "capacity", 1, 0, 'c' }, { "batch", 1, 0, 'b' }, { "rates", 1, 0, O_RATES },
        { "sleeping-rates", 1, 0, O_SLEEP_RATES }, { "latency-producers", 1, 0, O_LATP },
        { "latency-seconds", 1, 0, O_LATS }, { "burst-rate", 1, 0, O_BR },
        { "burst-seconds", 1, 0, O_BS }, { "quick", 0, 0, O_QUICK }, { "json", 1, 0, O_JSON },
        { "plot", 1, 0, O_PLOT }, { "list", 0, 0, 'l' }, { "help", 0, 0, 'h' },
        { "version", 0, 0, O_VERSION }, { 0, 0, 0, 0 }
    };
    static const char *const workload_names[] = { "throughput", "bounded", "batch", "latency",
                                                  "sleeping", "burst", "probe", "consumers",
                                                  "ipc", NULL };
    const char *queue_names[16] = { 0 };
    for (int i = 0; bench_adapters[i] && i < 15; i++)
        queue_names[i] = bench_adapters[i]->name;

    int opt;
    double v, list[MAX_COLS];
    int n;
    while ((opt = getopt_long(argc, argv, "p:n:t:r:q:w:c:b:lh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'p':
            n = parse_list(optarg, list, MAX_COLS, 1, 256);
            if (n < 1)
                goto bad;
            for (int i = 0; i < n; i++)
                o.producers[i] = (unsigned)list[i];
            o.nproducers = (unsigned)n;
            break;
        case 'n':
            if (parse_num(optarg, 1, 1e10, &v))
                goto bad;
            o.messages = (uint64_t)v;
            break;
        case 't':
            if (parse_num(optarg, 0, 86400, &v))
                goto bad;
            o.max_seconds = v;
            break;
        case 'r':
            if (parse_num(optarg, 1, 1000, &v))
                goto bad;
            o.repeats = (int)v;
            break;
        case 'q': o.queues = optarg; break;
        case 'w': o.workloads = optarg; break;
        case 'c':
            if (parse_num(optarg, 1, 1 << 30, &v))
                goto bad;
            o.capacity = (size_t)v;
            break;
        case 'b':
            if (parse_num(optarg, 1, 1024, &v))
                goto bad;
            o.batch = (unsigned)v;
            break;
        case O_RATES:
            if ((n = parse_list(optarg, o.rates, MAX_COLS, 1, 1e9)) < 1)
                goto bad;
            o.nrates = (unsigned)n;
            break;
        case O_SLEEP_RATES:
            if ((n = parse_list(optarg, o.sleep_rates, MAX_COLS, 1, 1e9)) < 1)
                goto bad;
            o.nsleep_rates = (unsigned)n;
            break;
        case O_LATP:
            if (parse_num(optarg, 1, 256, &v))
                goto bad;
            o.lat_producers = (unsigned)v;
            break;
        case O_LATS:
            if (parse_num(optarg, 0.001, 3600, &v))
                goto bad;
            o.lat_seconds = v;
            break;
        case O_BR:
            if (parse_num(optarg, 1, 1e9, &o.burst_rate))
                goto bad;
            break;
        case O_BS:
            if (parse_num(optarg, 0.001, 3600, &o.burst_seconds))
                goto bad;
            break;
        case O_QUICK:
            o.producers[0] = 8;
            o.nproducers = 1;
            o.repeats = 3;
            o.messages = 1000000;
            o.rates[0] = 100000;
            o.nrates = 1;
            o.lat_seconds = 0.5;
            o.burst_seconds = 0.5;
            if (!o.workloads)
                o.workloads = "throughput,latency,sleeping,burst";
            break;
        case O_JSON: o.json = optarg; break;
        case O_PLOT: o.plot = optarg; break;
        case 'l':
            for (int i = 0; bench_adapters[i]; i++)
                printf("%-14s %s\n", bench_adapters[i]->name, bench_adapters[i]->describe);
            return 0;
        case 'h': usage(stdout); return 0;
        case O_VERSION: printf("mpscq-bench %s (%s)\n", PACKAGE_VERSION, mpscq_implementation());
            return 0;
        default:
        bad:
            if (opt != '?')
                fprintf(stderr, "mpscq-bench: bad value for option '%s'\n",
                        optind > 1 ? argv[optind - 1] : "?");
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mpscq-bench: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (check_list(o.workloads, workload_names, "workload") ||
        check_list(o.queues, queue_names, "queue (see --list)"))
        return 2;
    for (unsigned i = 0; i < o.nproducers; i++)
        if (o.messages < o.producers[i]) {
            fprintf(stderr, "mpscq-bench: fewer messages than producers\n");
            return 2;
        }
    /* Before minutes of measuring, not after. */
    if (o.plot && !bench_report_can_plot()) {
        fprintf(stderr, "mpscq-bench: --plot needs gnuplot, which is not on PATH "
                        "(Debian: apt-get install gnuplot-nox)\n");
        return 2;
    }

    /* libmpscq first, always; then the others asked for, in list order. */
    const struct bench_adapter *queues[16];
    struct bench_report rep = { 0 };
    rep.queues = queues;
    for (int i = 0; bench_adapters[i]; i++)
        if (i == 0 || in_list(o.queues, bench_adapters[i]->name))
            queues[rep.nqueues++] = bench_adapters[i];
    bench_clock_init();
    rep.implementation = mpscq_implementation();
    rep.clock = bench_clock_source();
    rep.ns_per_tick = bench_ns_per_tick();
    rep.cpus = sysconf(_SC_NPROCESSORS_ONLN);
    rep.repeats = o.repeats;
    time_t now = time(NULL);
    strftime(rep.started, sizeof rep.started, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));

    struct bench_table tables[12];
    rep.tables = tables;
    char title[256];
    unsigned latp[MAX_COLS];
    for (unsigned i = 0; i < MAX_COLS; i++)
        latp[i] = o.lat_producers;
    if (in_list(o.workloads, "throughput")) {
        if (o.repeats > 1)
            snprintf(title, sizeof title,
                     "Throughput, unbounded, single enqueue/dequeue: million msg/s, median "
                     "(min-max) of %d runs of %llu messages",
                     o.repeats, (unsigned long long)o.messages);
        else
            snprintf(title, sizeof title,
                     "Throughput, unbounded, single enqueue/dequeue: million msg/s, one run of "
                     "%llu messages",
                     (unsigned long long)o.messages);
        add_table(&rep, "throughput-unbounded", title, KIND_THROUGHPUT, o.nproducers,
                  o.producers, NULL);
    }
    if (in_list(o.workloads, "bounded")) {
        snprintf(title, sizeof title,
                 "Throughput, bounded (capacity %zu), single enqueue/dequeue: million msg/s", o.capacity);
        add_table(&rep, "throughput-bounded", title, KIND_THROUGHPUT, o.nproducers, o.producers,
                  NULL);
        tables[rep.ntables - 1].capacity = o.capacity;
    }
    if (in_list(o.workloads, "batch")) {
        snprintf(title, sizeof title,
                 "Throughput, unbounded, batches of %u (enqueue_batch/dequeue_batch): million msg/s",
                 o.batch);
        add_table(&rep, "throughput-batch", title, KIND_THROUGHPUT, o.nproducers, o.producers,
                  NULL);
        tables[rep.ntables - 1].batch = o.batch;
    }
    if (in_list(o.workloads, "consumers")) {
        /* A worker pool: 8 and 16 producers (or the -p counts from 8 up),
         * 4 consumer threads. */
        static unsigned many_p[MAX_COLS];
        unsigned nmany = 0;
        for (unsigned i = 0; i < o.nproducers; i++)
            if (o.producers[i] >= 8)
                many_p[nmany++] = o.producers[i];
        if (!nmany) {
            many_p[0] = 8;
            many_p[1] = 16;
            nmany = 2;
        }
        snprintf(title, sizeof title,
                 "Throughput, unbounded, %u consumer threads (a worker pool), single "
                 "enqueue/dequeue: million msg/s",
                 BENCH_MANY_CONSUMERS);
        add_table(&rep, "throughput-consumers", title, KIND_THROUGHPUT, nmany, many_p, NULL);
        tables[rep.ntables - 1].consumers = BENCH_MANY_CONSUMERS;
    }
    if (in_list(o.workloads, "latency")) {
        snprintf(title, sizeof title,
                 "Latency, %u producers at a fixed offered rate, polling consumer, %g s: %s%d "
                 "run%s percentiles",
                 o.lat_producers, o.lat_seconds, o.repeats > 1 ? "median of " : "", o.repeats,
                 o.repeats > 1 ? "s'" : "'s");
        add_table(&rep, "latency", title, KIND_LATENCY, o.nrates, latp, o.rates);
    }
    if (in_list(o.workloads, "sleeping")) {
        snprintf(title, sizeof title,
                 "Sleeping consumer (dequeue_wait, or poll+nap where a queue has none), %u producers,"
                 " %g s: CPU of the whole process",
                 o.lat_producers, o.lat_seconds);
        add_table(&rep, "sleeping-consumer", title, KIND_SLEEPING, o.nsleep_rates, latp,
                  o.sleep_rates);
    }
    if (in_list(o.workloads, "burst")) {
        snprintf(title, sizeof title,
                 "Burst: %u producers send %g msg/s for %g s while the consumer waits, then it "
                 "drains (bytes/msg = resident growth per queued message)",
                 o.lat_producers, o.burst_rate, o.burst_seconds);
        add_table(&rep, "burst", title, KIND_BURST, 1, latp, &o.burst_rate);
    }
    if (in_list(o.workloads, "probe")) {
        snprintf(title, sizeof title,
                 "Probe: %u producers on a full queue (capacity %zu), then dequeue on an empty one",
                 o.lat_producers, o.capacity);
        add_table(&rep, "probe", title, KIND_PROBE, 1, latp, NULL);
        tables[rep.ntables - 1].capacity = o.capacity;
    }

    /* The consumer count is each table's: one, but the worker pool's. */
    int many = 0, one = 0;
    for (unsigned t = 0; t < rep.ntables; t++)
        if (tables[t].consumers > 1)
            many = 1;
        else
            one = 1;
    char who[48];
    if (many && one)
        snprintf(who, sizeof who, "1 consumer (%u in the worker pool)", BENCH_MANY_CONSUMERS);
    else
        snprintf(who, sizeof who, "%u consumer%s", many ? BENCH_MANY_CONSUMERS : 1u,
                 many ? "s" : "");
    printf("mpscq-bench %s: libmpscq (%s hot path) and %u other queue%s, %s, %ld CPUs, "
           "clock %s\n",
           PACKAGE_VERSION, rep.implementation, rep.nqueues - 1, rep.nqueues == 2 ? "" : "s", who,
           rep.cpus, rep.clock);
    for (unsigned q = 0; q < rep.nqueues; q++)
        printf("  %-14s %s\n", queues[q]->name, queues[q]->describe);
    printf("Runs of all queues are interleaved, so machine drift hits each alike; compare ratios.\n");
    rep.line_rt_before = bench_line_round_trip_ns();
    print_line_rt("before the runs", rep.line_rt_before);
    fflush(stdout);

    progress_tty = isatty(2);
    progress_t0 = bench_now_ns();
    unsigned total_runs = 0, done_runs = 0;
    for (unsigned t = 0; t < rep.ntables; t++)
        total_runs += tables[t].ncols * rep.nqueues * (unsigned)o.repeats;
    int setup_failed = 0;
    for (unsigned t = 0; t < rep.ntables; t++) {
        struct bench_table *tb = &tables[t];
        for (unsigned j = 0; j < tb->ncols; j++)
            for (int run = 0; run < o.repeats; run++)
                for (unsigned q = 0; q < rep.nqueues; q++, done_runs++) {
                    struct bench_cell *c = &tb->cells[q * tb->ncols + j];
                    if (c->skipped || cell_skip(tb, c))
                        continue;
                    char rate[32] = "";
                    if (c->rate > 0)
                        snprintf(rate, sizeof rate, " %g msg/s", c->rate);
                    progress(done_runs, total_runs, "%s: %s, %u producers%s, run %d of %d",
                             tb->id, c->a->name, c->producers, rate, run + 1, o.repeats);
                    struct job job = { 0 };
                    struct bench_cfg *cfg = &job.cfg;
                    *cfg = (struct bench_cfg){ .a = c->a, .producers = c->producers,
                                               .capacity = tb->capacity, .batch = tb->batch,
                                               .messages = o.messages,
                                               .consumers = tb->consumers };
                    double limit;
                    switch (tb->kind) {
                    case KIND_PROBE:
                        job.probe = 1;
                        job.capacity = tb->capacity;
                        limit = 30;
                        break;
                    case KIND_THROUGHPUT:
                        cfg->seconds = o.max_seconds;
                        cfg->consumer = BENCH_POLL;
                        limit = o.max_seconds + 3;
                        break;
                    case KIND_LATENCY:
                        cfg->rate = c->rate;
                        cfg->seconds = o.lat_seconds;
                        cfg->consumer = BENCH_POLL;
                        cfg->latency = 1;
                        limit = 3 * o.lat_seconds + 10;
                        break;
                    case KIND_SLEEPING:
                        cfg->rate = c->rate;
                        cfg->seconds = o.lat_seconds;
                        cfg->consumer = BENCH_BLOCK;
                        cfg->latency = 1;
                        limit = 3 * o.lat_seconds + 10;
                        break;
                    default: /* KIND_BURST */
                        cfg->rate = c->rate;
                        cfg->seconds = o.burst_seconds;
                        cfg->consumer = BENCH_HOLD;
                        cfg->latency = 1;
                        limit = 3 * o.burst_seconds + 10;
                        break;
                    }
                    tb->messages = tb->kind == KIND_THROUGHPUT ? o.messages
                                   : tb->kind == KIND_PROBE    ? 0
                                                               : (uint64_t)(c->rate * cfg->seconds);
                    tb->seconds = cfg->seconds;
                    int rc = isolate(&job, limit);
                    if (rc == 1) {
                        /* Not a delivery error: the queue made no progress
                         * by the deadline.  Not repeated. */
                        c->skipped = 1;
                        c->stalled = 1;
                        snprintf(c->stall_reason, sizeof c->stall_reason,
                                 "STALLED: killed after %.0f s without finishing (run %d)", limit,
                                 run + 1);
                        c->skip_reason = c->stall_reason;
                        continue;
                    }
                    if (rc == 0 && job.probe && job.out.rc != 0) {
                        c->runs++;
                        c->failures++;
                        snprintf(c->verdict, sizeof c->verdict,
                                 "probe: a full queue accepted a message, or the drain did not "
                                 "return what was queued");
                        continue;
                    }
                    if (rc != 0 || job.out.rc != 0) {
                        setup_failed = 1;
                        c->skipped = 1;
                        c->skip_reason = "could not run (see stderr)";
                        continue;
                    }
                    if (job.probe) {
                        int i = c->runs++;
                        record_pct(c, LAT_FULL, i, &job.out.full);
                        record_pct(c, LAT_EMPTY, i, &job.out.empty);
                        snprintf(c->verdict, sizeof c->verdict,
                                 "ok: every enqueue on the full queue refused, the fill drained "
                                 "in order");
                        continue;
                    }
                    struct bench_result r = job.out.r;
                    int i = c->runs++;
                    if (tb->kind == KIND_THROUGHPUT && r.verified && !c->stalled &&
                        r.messages < tb->messages) {
                        /* It ran, but its time limit stopped it before
                         * all its messages went through (the limit gives
                         * 0.4 million msg/s for the default 2 million in
                         * 5 s; every queue here does 3 or more when it
                         * does not wait): a queue that stalls (producers
                         * waiting for a preempted one, DPDK's ring at 0.1
                         * million msg/s), not a figure to take a ratio
                         * against. */
                        c->stalled = 1;
                        snprintf(c->stall_reason, sizeof c->stall_reason,
                                 "STALLED: %llu of %llu messages in the %u s limit (run %d)",
                                 (unsigned long long)r.messages,
                                 (unsigned long long)tb->messages,
                                 (unsigned)(o.max_seconds + 0.5), /* at most 86400 */
                                 run + 1);
                    }
                    if (!r.verified) {
                        if (!c->failures)
                            snprintf(c->verdict, sizeof c->verdict, "%s", r.verdict);
                        c->failures++;
                    } else if (!c->failures) {
                        snprintf(c->verdict, sizeof c->verdict, "%s", r.verdict);
                    }
                    c->mmsgs[i] = r.mmsgs;
                    c->cpu_ns[i] = r.cpu_ns_per_msg;
                    c->cpu_pct[i] = r.cpu_pct;
                    c->ccpu_pct[i] = r.consumer_cpu_pct;
                    c->bytes[i] = r.bytes_per_msg;
                    c->rss_before[i] = (double)r.rss_before_kib;
                    c->rss_peak[i] = (double)r.rss_peak_kib;
                    c->rss_after[i] = (double)r.rss_after_kib;
                    c->drain[i] = r.drain_mmsgs;
                    record_pct(c, LAT_ENQ, i, &r.enq);
                    record_pct(c, LAT_DEQ, i, &r.deq);
                    record_pct(c, LAT_EMPTY, i, &r.empty);
                    record_pct(c, LAT_E2E, i, &r.e2e);
                    record_pct(c, LAT_FULL, i, &r.full);
                }
    }
    progress_end();
    rep.line_rt_after = bench_line_round_trip_ns();
    bench_report_summarize(&rep);
    bench_report_print(&rep, stdout);
    print_line_rt("after the runs", rep.line_rt_after);
    fflush(stdout);

    int status = setup_failed ? 3 : 0;
    for (unsigned t = 0; t < rep.ntables; t++)
        for (unsigned i = 0; i < rep.nqueues * tables[t].ncols; i++)
            if (tables[t].cells[i].failures)
                status = 1;
    if (o.json && bench_report_json(&rep, o.json) != 0) {
        fprintf(stderr, "mpscq-bench: cannot write %s\n", o.json);
        if (!status)
            status = 3;
    }
    if (o.plot) {
        if (bench_report_plot(&rep, o.plot) != 0) {
            fprintf(stderr, "mpscq-bench: could not draw %s\n", o.plot);
            if (!status)
                status = 3;
        } else {
            printf("plot: %s\n", o.plot);
        }
    }
    bench_report_free(&rep);
    if (in_list(o.workloads, "ipc")) {
        /* Its own table: the transports are not queue adapters. */
        uint64_t n = o.messages < 500000 ? o.messages : 500000;
        if (bench_ipc(stdout, o.repeats, n) != 0)
            status = 1;
    }
    return status;
}
