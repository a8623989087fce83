#!/bin/sh
# sub-check.sh - build the release tarball in a fresh directory with other
# compilers or flags and run its test suite there, leaving this build
# alone (a separate unpacked tree, so an in-tree configure is no obstacle).
#   sub-check.sh TARBALL NAME [configure arguments...]
# Environment: SUB_TARGET (default check) is the make target run there,
# SUB_MAKEFLAGS extra make arguments (no spaces inside one), SUB_TIMEOUT
# the seconds that target may run (default 1800, several times the
# slowest tier: a guard against a hang, which then fails with the logs
# instead of running into CI's limit unseen);
# CK_FORK and MPSCQ_STRESS_SCALE pass through to the tests.
set -eu
tarball=$1
name=$2
shift 2
dir=_sub/$name
rm -rf "$dir"
mkdir -p "$dir"
tar -xzf "$tarball" -C "$dir"
src=$(ls -d "$dir"/libmpscq-*)
cd "$src"
echo "sub-check[$name]: ./configure $*"
./configure -q "$@" >config.out 2>&1 || { cat config.out; exit 1; }
grep -A1 "hot-path implementation" config.out | head -1 || true
make -j2 -s >build.out 2>&1 || { cat build.out; exit 1; }
# Build the test programs first; then run the target serially (the
# Valgrind tools of check-valgrind would otherwise share tests/*.log).
# shellcheck disable=SC2086
if ! { make -j2 check TESTS= ${SUB_MAKEFLAGS:-} &&
       MPSCQ_SKIP_INSTALL_TEST=1 timeout -s KILL "${SUB_TIMEOUT:-1800}" \
         make -j1 "${SUB_TARGET:-check}" ${SUB_MAKEFLAGS:-}; } >check.out 2>&1; then
    cat check.out tests/*.log 2>/dev/null | tail -80
    # A test still running when the guard fired has a log and no result
    # (SIGKILL: the test driver's TERM trap would delete its log).
    for f in tests/*.log; do
        [ -f "${f%.log}.trs" ] || [ ! -s "$f" ] || echo "sub-check[$name]: unfinished: ${f%.log}"
    done
    echo "sub-check[$name]: FAILED"
    exit 1
fi
grep -h "Checks:" tests/*.log || true
grep -E "^# (PASS|FAIL|ERROR|SKIP)" check.out | sort | uniq -c | tr '\n' ' '
echo
echo "sub-check[$name]: passed"
