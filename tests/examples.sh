#!/bin/sh
# examples.sh - the examples run, small, and verify themselves: every
# message once, in each producer's order (their JSON says
# "verified": true and they exit 0).
set -u
dir=${top_builddir:-.}/examples
if ! "$dir/hello" >/dev/null 2>&1; then
    echo "examples: skipped ($dir/hello does not run on this machine)"
    exit 77
fi
fail=0
for run in "lanes 2000" "workers 2000"; do
    # shellcheck disable=SC2086
    out=$("$dir"/$run) || { echo "FAIL: examples/$run exited $?: $out"; fail=1; continue; }
    case $out in
    *'"verified": true'*) echo "ok: examples/$run: $out" ;;
    *) echo "FAIL: examples/$run: $out"; fail=1 ;;
    esac
done
# The interprocess ring: a consumer process and three producer processes
# through a named ring (the last one closes it).  Two consumers are
# started: one takes the consumer role and sleeps in it; the other's
# first read finds the role taken (MPSCQ_BUSY), and it says so and exits
# 1, leaving the ring and its name to the first.
name="/mpscq-examples-$$"
"$dir/ring-consumer" "$name" 3000 > "ring-consumer1.$$.out" 2>&1 &
c1=$!
"$dir/ring-consumer" "$name" 3000 > "ring-consumer2.$$.out" 2>&1 &
c2=$!
# Poll for the first exit (dash has no `wait -n`); which one exits does
# not depend on timing: whichever took the role second.
while kill -0 $c1 2>/dev/null && kill -0 $c2 2>/dev/null; do sleep 0.1; done
if kill -0 $c1 2>/dev/null; then
    cpid=$c1 cout="ring-consumer1.$$.out" loser=$c2 lout="ring-consumer2.$$.out"
else
    cpid=$c2 cout="ring-consumer2.$$.out" loser=$c1 lout="ring-consumer1.$$.out"
fi
wait $loser
st=$?
if [ $st -eq 1 ] && grep -q 'another consumer is reading' "$lout"; then
    echo "ok: examples/ring-consumer, a second one: $(cat "$lout")"
else
    echo "FAIL: examples/ring-consumer, a second one exited $st: $(cat "$lout")"
    fail=1
fi
"$dir/ring-producer" "$name" 1000 & p1=$!
"$dir/ring-producer" "$name" 1000 & p2=$!
wait $p1 && wait $p2 && "$dir/ring-producer" "$name" 1000 --close || {
    echo "FAIL: examples/ring-producer"; fail=1; kill $cpid 2>/dev/null; }
if wait $cpid; then
    echo "ok: examples/ring-consumer: $(cat "$cout")"
else
    echo "FAIL: examples/ring-consumer: $(cat "$cout")"
    fail=1
fi
rm -f "$cout" "$lout"
exit $fail
