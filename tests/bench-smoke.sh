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
grep -q 'FAILED' "$tmp/out" && fail "a run failed"
# JSON: balanced, and every non-skipped result verified.
opens=$(tr -cd '{' <"$tmp/r.json" | wc -c)
closes=$(tr -cd '}' <"$tmp/r.json" | wc -c)
[ "$opens" -eq "$closes" ] && [ "$opens" -gt 10 ] || fail "JSON braces $opens/$closes"
grep -q '"verified": false' "$tmp/r.json" && fail "JSON has an unverified run"
grep -q '"p99.9"' "$tmp/r.json" || fail "JSON has no percentiles"
grep -q '"bytes_per_msg"' "$tmp/r.json" || fail "JSON has no memory figures"

# Bad usage: status 2 and a message, nothing run.
for args in "-p 0" "-q no-such-queue" "-w nothing" "-r x" "--bogus" "extra"; do
    run $args >"$tmp/out" 2>&1
    rc=$?
    [ $rc -eq 2 ] || fail "'$args' exited $rc, not 2"
done
run --help | grep -q -- '--json FILE' || fail "--help"
run --version | grep -q '^mpscq-bench ' || fail "--version"
echo "PASS: bench-smoke ($queues)"
