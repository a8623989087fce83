#!/bin/sh
# tsan-downstream.sh - in a build configured with --enable-tsan (make
# check-tsan): install, then build tests/tsan-prog.c outside the tree with
# -fsanitize=thread through pkg-config, and run it.  ThreadSanitizer exits
# 66 on any report, so this passes only if a downstream program that
# passes message bodies through the installed library runs clean.
set -eu
: "${top_builddir:=.}" "${top_srcdir:=.}" "${MAKE:=make}" "${CC:=cc}"
dest=$(mktemp -d "${TMPDIR:-/tmp}/mpscq-tsan.XXXXXX")
trap 'rm -rf "$dest"' EXIT
$MAKE -s -C "$top_builddir" install DESTDIR="$dest" >/dev/null 2>&1
prefix=$(sed -n 's/^prefix=//p' "$top_builddir/mpscq.pc")
libdir=$(sed -n 's/^libdir=//p' "$top_builddir/mpscq.pc" | sed "s|\${exec_prefix}|$prefix|")
pc() { PKG_CONFIG_PATH="$dest$libdir/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$dest" pkg-config "$@" mpscq; }
pc --cflags | grep -q -- '-fsanitize=thread' || { echo "tsan-downstream: mpscq.pc lacks -fsanitize=thread"; exit 1; }
# shellcheck disable=SC2046
$CC -g -O1 -o "$dest/tsan-prog" "$top_srcdir/tests/tsan-prog.c" $(pc --cflags --libs --static | sed 's/-lmpscq/-l:libmpscq.a/')
TSAN_OPTIONS="halt_on_error=1 exitcode=66" "$dest/tsan-prog"
# shellcheck disable=SC2046
$CC -g -O1 -o "$dest/tsan-prog-shared" "$top_srcdir/tests/tsan-prog.c" $(pc --cflags --libs)
TSAN_OPTIONS="halt_on_error=1 exitcode=66" LD_LIBRARY_PATH="$dest$libdir" "$dest/tsan-prog-shared"
echo "tsan-downstream: static and shared, no ThreadSanitizer report"
