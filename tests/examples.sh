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
# through a named ring (the last one closes it).
name="/mpscq-examples-$$"
"$dir/ring-consumer" "$name" 3000 > "ring-consumer.$$.out" &
cpid=$!
"$dir/ring-producer" "$name" 1000 & p1=$!
"$dir/ring-producer" "$name" 1000 & p2=$!
wait $p1 && wait $p2 && "$dir/ring-producer" "$name" 1000 --close || {
    echo "FAIL: examples/ring-producer"; fail=1; kill $cpid 2>/dev/null; }
if wait $cpid; then
    echo "ok: examples/ring-consumer: $(cat "ring-consumer.$$.out")"
else
    echo "FAIL: examples/ring-consumer: $(cat "ring-consumer.$$.out")"
    fail=1
fi
rm -f "ring-consumer.$$.out"
exit $fail
