#!/bin/sh
# man-check.sh - the manual pages render cleanly, and every public
# function and type of mpscq.h has an installed page.
#   * mandoc -T lint -W warning and groff -ww print nothing for any page
#     (whichever of the two is installed; Debian: mandoc, groff-base);
#   * no rendered page shows a broken cross reference such as "(3,)";
#   * a .so page names a page that exists;
#   * each MPSCQ_API function, inline wrapper, typedef and enum of
#     include/mpscq.h has doc/man3/NAME.3, and every page in doc/man3 is
#     listed in Makefile.am's dist_man3_MANS (so it is installed).
set -u
: "${top_srcdir:=.}"
if [ -n "${VALGRIND:-}" ]; then
    echo "man-check: skipped (nothing of ours to check under Valgrind)"
    exit 77
fi
doc="$top_srcdir/doc"
have_mandoc=no; command -v mandoc >/dev/null 2>&1 && have_mandoc=yes
have_groff=no; command -v groff >/dev/null 2>&1 && have_groff=yes
if [ "$have_mandoc" = no ] && [ "$have_groff" = no ]; then
    echo "man-check: neither mandoc nor groff is installed (Debian: apt-get install mandoc)"
    exit 77
fi
fail=0
pages=0
bad() { echo "man-check: FAIL: $*"; fail=$((fail + 1)); }

for f in "$doc"/man3/*.3 "$doc"/man1/*.1; do
    pages=$((pages + 1))
    name=${f#"$doc"/}
    first=$(head -n 1 "$f")
    case "$first" in
    .so\ *)
        target=${first#.so }
        [ -f "$doc/$target" ] || bad "$name: .so $target: no such page"
        continue ;;
    esac
    if [ "$have_mandoc" = yes ]; then
        out=$(cd "$doc" && mandoc -T lint -W warning "$name" 2>&1 | grep -v 'mandoc.db')
        [ -z "$out" ] || bad "$name: mandoc -T lint: $out"
        text=$(cd "$doc" && mandoc -T ascii "$name" 2>&1 | sed 's/.\x08//g')
    else
        text=$(cd "$doc" && groff -mandoc -Tascii -P-c -I. "$name" 2>&1)
    fi
    if [ "$have_groff" = yes ]; then
        out=$(cd "$doc" && groff -ww -z -mandoc -I. "$name" 2>&1)
        [ -z "$out" ] || bad "$name: groff -ww: $out"
    fi
    if echo "$text" | grep -q '([0-9],)'; then
        bad "$name: renders a broken cross reference: $(echo "$text" | grep '([0-9],)' | head -n 1)"
    fi
done

hdr="$top_srcdir/include/mpscq.h"
names=$( {
    sed -n 's/^MPSCQ_API .*[ *]\(mpscq_[a-z0-9_]*\)(.*/\1/p' "$hdr"
    sed -n 's/^static inline .*[ *]\(mpscq_[a-z0-9_]*\)(.*/\1/p' "$hdr"
    sed -n 's/^typedef struct [a-z_]* \(mpscq_[a-z0-9_]*\);/\1/p' "$hdr"
    sed -n 's/^} \(mpscq_[a-z0-9_]*\);/\1/p' "$hdr"
    sed -n 's/^enum \(mpscq_[a-z0-9_]*\) {.*/\1/p' "$hdr"
    sed -n 's/^struct \(mpscq_[a-z0-9_]*\) {.*/\1/p' "$hdr"
} | sort -u)
[ -n "$names" ] || bad "found no public names in $hdr"
listed=$(sed -n '/^dist_man3_MANS/,/^$/p' "$top_srcdir/Makefile.am" | tr ' \\\t' '\n\n\n' | sed -n 's|^doc/man3/||p')
for n in $names; do
    [ -f "$doc/man3/$n.3" ] || bad "$n (mpscq.h) has no page doc/man3/$n.3"
done
for f in "$doc"/man3/*.3; do
    b=${f##*/}
    echo "$listed" | grep -qx "$b" || bad "doc/man3/$b is not in dist_man3_MANS (not installed)"
done
if [ "$fail" -ne 0 ]; then
    echo "man-check: $fail failed"
    exit 1
fi
echo "man-check: $pages pages render cleanly; $(echo "$names" | wc -l) public names of mpscq.h each have a page"
exit 0
