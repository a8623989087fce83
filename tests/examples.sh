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
exit $fail
