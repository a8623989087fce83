#!/bin/sh
# bench-smoke.sh - mpscq-bench end to end, tiny sizes: every workload
# runs and is verified, the table and the JSON carry every queue, bad
# usage is refused with status 2.  (Figures are not checked: speed
# belongs in `make bench`, not in `make check`.)
set -u
bench=${top_builddir:-.}/bench/mpscq-bench
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; sed 's/^/  | /' "$tmp/out" 2>/dev/null | head -60; exit 1; }

run() { "$bench" "$@"; }
# A cross build (the AArch64 target runs its suites under qemu through
# LOG_COMPILER, which shell tests do not get) cannot run it here: skip.
if ! run --version >/dev/null 2>&1; then
    echo "bench-smoke: skipped ($bench does not run on this machine)"
    exit 77
fi

queues=$(run --list | awk '{ print $1 }' | paste -sd, -)
[ -n "$queues" ] || fail "--list printed nothing"
case ",$queues," in *,libmpscq,*mutex+ring,*) ;; *) fail "--list: $queues" ;; esac

run -p 1,3 -n 3000 -r 2 -c 16 -b 8 --rates 20000 --sleeping-rates 20000 \
    --latency-producers 3 --latency-seconds 0.05 --burst-rate 40000 --burst-seconds 0.05 \
    --json "$tmp/r.json" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 0 ] || fail "exit status $rc: $(cat "$tmp/err")"
grep -q 'every run verified: no loss, no duplicate, per-producer FIFO' "$tmp/out" ||
    fail "no verification line"
for t in 'Throughput, unbounded' 'Throughput, bounded' 'batches of 8' 'Latency, 3 producers' \
         'Sleeping consumer' 'Burst:' 'Probe:'; do
    grep -q "$t" "$tmp/out" || fail "table '$t' missing"
done
for q in $(echo "$queues" | tr , ' '); do
    grep -q "^  $q " "$tmp/out" || fail "queue $q missing from the table"
    grep -q "\"queue\": \"$q\"" "$tmp/r.json" || fail "queue $q missing from the JSON"
done
grep -q 'libmpscq/mutex+ring' "$tmp/out" || fail "no ratio line"
# The interprocess table (producer processes): every transport that ran
# was verified, and the ratio lines are there.
grep -q '^Interprocess: producer processes' "$tmp/out" || fail "no interprocess table"
grep -q '^mpscq_ring / best of pipe, socket, mqueue (64 B, 1P)' "$tmp/out" ||
    fail "no interprocess ratio line"
grep -q 'FAILED' "$tmp/out" && fail "a run failed"
# JSON: balanced, and every non-skipped result verified.
opens=$(tr -cd '{' <"$tmp/r.json" | wc -c)
closes=$(tr -cd '}' <"$tmp/r.json" | wc -c)
[ "$opens" -eq "$closes" ] && [ "$opens" -gt 10 ] || fail "JSON braces $opens/$closes"
grep -q '"verified": false' "$tmp/r.json" && fail "JSON has an unverified run"
grep -q '"p99.9"' "$tmp/r.json" || fail "JSON has no percentiles"
grep -q '"bytes_per_msg"' "$tmp/r.json" || fail "JSON has no memory figures"

# The cache line round trip, before and after the runs: a figure, or null
# (and "not measured") when it could not be measured (bench/coherence.h).
grep -Eq '"line_round_trip_ns": \{"before": ([0-9.]+|null), "after": ([0-9.]+|null)\}' "$tmp/r.json" ||
    fail "JSON has no line round trip"
[ "$(grep -c '^Cache line round trip between two CPUs, \(before\|after\) the runs: ' "$tmp/out")" -eq 2 ] ||
    fail "the line round trip is not printed before and after the runs"

grep -q '"cpu_model"' "$tmp/r.json" && grep -q '"kernel"' "$tmp/r.json" &&
    grep -q '"compiler"' "$tmp/r.json" && grep -q '"libmpscq": {"version"' "$tmp/r.json" ||
    fail "JSON lacks the host and version record"

# One repeat: medians alone, no min-max; every throughput row has as many
# fields as the header (aligned columns, no stray ranges).
run -p 1,2 -n 2000 -r 1 -w throughput -q libmpscq,mutex+ring >"$tmp/out" 2>&1 ||
    fail "single repeat run"
grep -q 'one run of' "$tmp/out" || fail "single repeat title"
awk '/^Throughput/ { t = 1; next } t && /^  libmpscq / { print }' "$tmp/out" | grep -q '(' &&
    fail "single repeat printed a min-max"
hdr=$(awk '/^  queue/ { print length($0); exit }' "$tmp/out")
row=$(awk '/^  libmpscq\/mutex\+ring/ { print length($0); exit }' "$tmp/out")
[ "$hdr" = "$row" ] || fail "ratio row ($row) not aligned with the header ($hdr)"

# --plot: refused before any run when gnuplot is missing; drawn with the
# peers' names as they are when it is there.
PATH=/nonexistent "$bench" -p 1 -n 100 --plot "$tmp/p.svg" >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q 'needs gnuplot' "$tmp/out" || fail "--plot without gnuplot"
if command -v gnuplot >/dev/null 2>&1; then
    run -p 1,2 -n 2000 -r 2 -w throughput --plot "$tmp/p.svg" >"$tmp/out" 2>&1 || fail "--plot"
    for q in $(echo "$queues" | tr , ' '); do
        [ "$q" = spsc-ring ] && continue
        grep -q ">$q<" "$tmp/p.svg" || fail "plot legend lacks '$q' as written"
    done
    grep -q '>Unbounded, single messages<' "$tmp/p.svg" || fail "plot panel title"
fi

# Bad usage: status 2 and a message, nothing run.
for args in "-p 0" "-q no-such-queue" "-w nothing" "-r x" "--bogus" "extra"; do
    run $args >"$tmp/out" 2>&1
    rc=$?
    [ $rc -eq 2 ] || fail "'$args' exited $rc, not 2"
done
run --help | grep -q -- '--json FILE' || fail "--help"
run --version | grep -q '^mpscq-bench ' || fail "--version"
echo "PASS: bench-smoke ($queues)"
