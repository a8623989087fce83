#!/bin/sh
# install-test.sh - `make install DESTDIR=...`, then use the installed
# library from outside the tree the ways a downstream project does:
#   1. pkg-config, shared:   cc prog.c $(pkg-config --cflags --libs mpscq)
#   2. pkg-config, static:   the same with --static and libmpscq.a
#   3. libmpscq.a linked into a downstream shared object, loaded by dlopen
#   4. CMake: find_package(mpscq CONFIG REQUIRED), mpscq::mpscq and
#      mpscq::mpscq_static
#   5. the shared object exports exactly the functions mpscq.h marks
#      MPSCQ_API, each at the version src/libmpscq.map gives it
# and that the man pages, the bench and its page are installed.
set -eu
# Sanitizer builds link their runtime into libmpscq's users; an outside
# program built with plain cc cannot link them, so skip (automake: 77).
# Under check-valgrind ($VALGRIND is set) there is nothing of ours to
# check in a shell script.
if [ -n "${MPSCQ_SKIP_INSTALL_TEST:-}" ] || [ -n "${VALGRIND:-}" ]; then
    echo "install-test: skipped"
    exit 77
fi
: "${top_builddir:=.}" "${top_srcdir:=.}" "${MAKE:=make}" "${CC:=cc}"
dest=$(mktemp -d "${TMPDIR:-/tmp}/mpscq-install.XXXXXX")
trap 'rm -rf "$dest"' EXIT
$MAKE -s -C "$top_builddir" install DESTDIR="$dest" >/dev/null
prefix=$(sed -n 's/^prefix=//p' "$top_builddir/mpscq.pc")
libdir=$(sed -n 's/^libdir=//p' "$top_builddir/mpscq.pc" | sed "s|\${exec_prefix}|$prefix|")
lib="$dest$libdir"
pass=0
ok() { pass=$((pass + 1)); echo "install-test: ok $pass - $*"; }
fail() { echo "install-test: FAIL - $*" >&2; exit 1; }

test -f "$lib/pkgconfig/mpscq.pc" || fail "mpscq.pc not installed"
test -f "$lib/libmpscq.a" || fail "libmpscq.a not installed"
test -n "$(find "$dest" -name mpscq_enqueue.3 | head -n 1)" || fail "man pages not installed"
test -n "$(find "$dest" -name mpscq-bench.1 | head -n 1)" || fail "mpscq-bench.1 not installed"
bench=$(find "$dest" -type f -name mpscq-bench | head -n 1)
test -x "$bench" || fail "mpscq-bench not installed"
LD_LIBRARY_PATH="$lib" "$bench" --version | grep -q '^mpscq-bench ' || fail "mpscq-bench --version"
ok "files installed"

pc() { PKG_CONFIG_PATH="$lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$dest" pkg-config "$@" mpscq; }
needs_so() { readelf -d "$1" | grep -q 'NEEDED.*libmpscq\.so'; }
prog="$top_srcdir/tests/install-prog.c"

shared=no
ls "$lib"/libmpscq.so.* >/dev/null 2>&1 && shared=yes
if [ "$shared" = yes ]; then
    # shellcheck disable=SC2046
    $CC -o "$dest/prog-shared" "$prog" $(pc --cflags --libs) -pthread
    needs_so "$dest/prog-shared" || fail "prog-shared does not load libmpscq.so"
    LD_LIBRARY_PATH="$lib" "$dest/prog-shared" || fail "prog-shared"
    ok "shared library through pkg-config"

    # Exactly the API, versioned.
    exported=$(nm -D --defined-only "$lib"/libmpscq.so | awk '$2 == "T" { print $3 }' | sort)
    api=$(sed -n 's/^MPSCQ_API .*[ *]\(mpscq_[a-z0-9_]*\)(.*/\1/p' "$top_srcdir/include/mpscq.h" | sort)
    mapped=$(sed -n 's/^ *\(mpscq_[a-z0-9_]*\);$/\1/p' "$top_srcdir/src/libmpscq.map" | sort)
    # Each function at its map node's version (MPSCQ_0.2, MPSCQ_0.3, ...).
    want=$(awk '/^MPSCQ_[0-9.]* *\{/ { node = $1 } /^ *mpscq_[a-z0-9_]*;$/ { sub(/^ */, ""); sub(/;$/, ""); print $0 "@@" node }' \
        "$top_srcdir/src/libmpscq.map" | sort)
    versioned=$(echo "$want" | sed 's/@@.*//' | sort)
    [ "$versioned" = "$api" ] || fail "libmpscq.map and mpscq.h's MPSCQ_API functions differ"
    for f in $mapped; do
        echo "$api" | grep -qx "$f" || fail "$f is in libmpscq.map but not MPSCQ_API in mpscq.h"
    done
    if [ "$exported" != "$want" ]; then
        echo "exported:"; echo "$exported"; echo "mpscq.h:"; echo "$want"
        fail "libmpscq.so exports other functions than mpscq.h declares"
    fi
    ok "libmpscq.so exports the $(echo "$api" | wc -l) MPSCQ_API functions of mpscq.h, each at its libmpscq.map version"
fi

# shellcheck disable=SC2046
$CC -o "$dest/prog-static" "$prog" $(pc --cflags --libs --static | sed 's/-lmpscq/-l:libmpscq.a/')
needs_so "$dest/prog-static" && fail "prog-static loads libmpscq.so"
"$dest/prog-static" || fail "prog-static"
ok "static library through pkg-config --static"

# shellcheck disable=SC2046
$CC -shared -fPIC -DMPSCQ_INSTALL_PLUGIN -o "$dest/plugin.so" "$prog" \
    $(pc --cflags --libs --static | sed 's/-lmpscq/-l:libmpscq.a/')
needs_so "$dest/plugin.so" && fail "plugin.so loads libmpscq.so"
$CC -o "$dest/loader" "$top_srcdir/tests/install-dlopen.c" -ldl
"$dest/loader" "$dest/plugin.so" || fail "libmpscq.a inside a dlopen'ed shared object"
ok "static library inside a shared object loaded with dlopen"

if command -v cmake >/dev/null 2>&1; then
    cmake -S "$top_srcdir/tests/install-cmake" -B "$dest/cmake-build" \
        -DCMAKE_PREFIX_PATH="$dest$prefix" -DCMAKE_C_COMPILER="$CC" \
        -DPROG_SOURCE="$(cd "$top_srcdir" && pwd)/tests/install-prog.c" >"$dest/cmake.log" 2>&1 ||
        { cat "$dest/cmake.log"; fail "cmake: find_package(mpscq CONFIG)"; }
    cmake --build "$dest/cmake-build" >>"$dest/cmake.log" 2>&1 ||
        { cat "$dest/cmake.log"; fail "cmake --build"; }
    LD_LIBRARY_PATH="$lib" "$dest/cmake-build/prog" || fail "CMake mpscq::mpscq"
    if [ "$shared" = yes ]; then
        needs_so "$dest/cmake-build/prog" || fail "mpscq::mpscq is not the shared library"
    fi
    "$dest/cmake-build/prog_static" || fail "CMake mpscq::mpscq_static"
    needs_so "$dest/cmake-build/prog_static" && fail "mpscq::mpscq_static loads libmpscq.so"
    # The version file: 0.4 and the exact version are accepted, 0.1 to 0.3 and
    # 1.0 refused (README's ABI policy).
    for v in 0.1 0.2 0.3 1.0; do
        mkdir -p "$dest/cmake-v$v"
        printf 'cmake_minimum_required(VERSION 3.13)\nproject(v C)\nfind_package(mpscq %s CONFIG QUIET)\nif(mpscq_FOUND)\n  message(FATAL_ERROR "accepted %s")\nendif()\n' "$v" "$v" \
            > "$dest/cmake-v$v/CMakeLists.txt"
        cmake -S "$dest/cmake-v$v" -B "$dest/cmake-v$v/b" -DCMAKE_PREFIX_PATH="$dest$prefix" \
            >"$dest/cmake.log" 2>&1 || { cat "$dest/cmake.log"; fail "mpscq-config-version.cmake accepts $v"; }
    done
    ok "CMake package: mpscq::mpscq, mpscq::mpscq_static, version file"
else
    echo "install-test: cmake not found, CMake package not tested"
fi
echo "install-test: $pass passed, 0 failed"
