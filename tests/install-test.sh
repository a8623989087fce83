#!/bin/sh
# install-test.sh - `make install DESTDIR=...`, then build a program outside
# the tree exactly as a user would:  cc prog.c $(pkg-config --cflags --libs --static mpscq)
set -eu
# Sanitizer builds link their runtime into libmpscq.a's users; an outside
# program built with plain cc cannot link them, so skip (automake: 77).
# Under check-valgrind ($VALGRIND is set) there is nothing of ours to
# check in a shell script.
if [ -n "${MPSCQ_SKIP_INSTALL_TEST:-}" ] || [ -n "${VALGRIND:-}" ]; then
    echo "install-test: skipped"
    exit 77
fi
: "${top_builddir:=.}" "${top_srcdir:=.}" "${MAKE:=make}"
dest=$(mktemp -d "${TMPDIR:-/tmp}/mpscq-install.XXXXXX")
trap 'rm -rf "$dest"' EXIT
$MAKE -s -C "$top_builddir" install DESTDIR="$dest" >/dev/null
prefix=$(sed -n 's/^prefix=//p' "$top_builddir/mpscq.pc")
libdir=$(sed -n 's/^libdir=//p' "$top_builddir/mpscq.pc" | sed "s|\${exec_prefix}|$prefix|")
pcdir="$dest$libdir/pkgconfig"
test -f "$pcdir/mpscq.pc"
test -f "$dest$libdir/libmpscq.a"
man=$(find "$dest" -name mpscq_enqueue.3 | head -n 1)
test -n "$man"
test -n "$(find "$dest" -name mpscq-bench.1 | head -n 1)"
bench=$(find "$dest" -type f -name mpscq-bench | head -n 1)
test -x "$bench"
"$bench" --version | grep -q '^mpscq-bench '
flags=$(PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$dest" pkg-config --cflags --libs --static mpscq)
# shellcheck disable=SC2086
${CC:-cc} -o "$dest/prog" "$top_srcdir/tests/install-prog.c" $flags
"$dest/prog"
echo "install-test: 1 passed, 0 failed"
