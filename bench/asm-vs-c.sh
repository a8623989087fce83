#!/bin/sh
# asm-vs-c.sh - the asm build against the C build, measured in one run.
#   1. instructions per enqueue+dequeue pair (valgrind --tool=callgrind,
#      counting only run_pairs: repeatable whatever the machine does),
#      unbounded and bounded (capacity 1024);
#   2. the same for mpscq_ring: instructions per mpscq_ring_write +
#      mpscq_ring_read pair of 8, 64 and 1024 bytes (run_ring);
#   3. throughput, 1 and 4 producers, both builds interleaved REPEATS
#      times, median of each and the asm/C ratio; ns per ring pair.
# Usage: bench/asm-vs-c.sh [BUILDDIR]   (REPEATS=5 by default)
set -eu
b=${1:-.}
repeats=${REPEATS:-5}
asm=$b/bench/pair-asm
c=$b/bench/pair-c
for x in "$asm" "$c"; do
    test -x "$x" || { echo "asm-vs-c: $x missing (an asm build is needed)" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pairs=200000
for cap in "" 1024; do
    if [ -z "$cap" ]; then mode=unbounded; else mode="bounded, capacity $cap"; fi
    echo "Instructions per enqueue+dequeue pair (callgrind, $pairs pairs, single thread, $mode):"
    for x in "$asm" "$c"; do
        # shellcheck disable=SC2086
        valgrind --tool=callgrind --toggle-collect=run_pairs --callgrind-out-file="$tmp/cg" \
            "$x" pairs $pairs $cap >"$tmp/out" 2>"$tmp/err"
        ir=$(sed -n 's/^summary: *//p' "$tmp/cg")
        # Minus the warm-up call (1000 pairs), per pair.
        printf '  %-12s %s\n' "$(cut -d' ' -f1 "$tmp/out")" \
            "$(awk -v ir="$ir" -v n=$pairs 'BEGIN { printf "%.1f", ir / (n + 1000) }')"
        echo "$ir" > "$tmp/ir.$(basename "$x")"
    done
    awk -v a="$(cat "$tmp/ir.pair-asm")" -v c="$(cat "$tmp/ir.pair-c")" \
        'BEGIN { printf "  asm/C instructions: %.3f\n\n", a / c }'
done

echo "Instructions per mpscq_ring_write + mpscq_ring_read pair (callgrind, $pairs pairs, single thread):"
for size in 8 64 1024; do
    for x in "$asm" "$c"; do
        valgrind --tool=callgrind --toggle-collect=run_ring --callgrind-out-file="$tmp/cg" \
            "$x" ring $pairs $size >"$tmp/out" 2>"$tmp/err"
        ir=$(sed -n 's/^summary: *//p' "$tmp/cg")
        echo "$ir" > "$tmp/ir.$(basename "$x")"
    done
    awk -v s=$size -v a="$(cat "$tmp/ir.pair-asm")" -v c="$(cat "$tmp/ir.pair-c")" -v n=$pairs \
        'BEGIN { printf "  %5d bytes  asm %.1f   C %.1f   asm/C %.3f\n", s, a / (n + 1000), c / (n + 1000), a / c }'
done
echo

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "Throughput, million msg/s, median of $repeats (interleaved runs):"
for p in 1 4; do
    : > "$tmp/t.asm"; : > "$tmp/t.c"
    i=0
    while [ $i -lt "$repeats" ]; do
        "$asm" mt $p 4000000 | awk '{ print $4 }' >> "$tmp/t.asm"
        "$c" mt $p 4000000 | awk '{ print $4 }' >> "$tmp/t.c"
        i=$((i + 1))
    done
    ma=$(median < "$tmp/t.asm"); mc=$(median < "$tmp/t.c")
    awk -v p=$p -v a="$ma" -v c="$mc" \
        'BEGIN { printf "  %dP1C  asm %7.2f   C %7.2f   asm/C %.3f\n", p, a, c, a / c }'
done
echo "single-thread ns/pair: asm $("$asm" pairs 20000000 | awk '{ print $5 }'), C $("$c" pairs 20000000 | awk '{ print $5 }')"
for size in 64 1024; do
    : > "$tmp/r.asm"; : > "$tmp/r.c"
    i=0
    while [ $i -lt "$repeats" ]; do
        "$asm" ring 2000000 $size | awk '{ print $6 }' >> "$tmp/r.asm"
        "$c" ring 2000000 $size | awk '{ print $6 }' >> "$tmp/r.c"
        i=$((i + 1))
    done
    ma=$(median < "$tmp/r.asm"); mc=$(median < "$tmp/r.c")
    awk -v s=$size -v a="$ma" -v c="$mc" \
        'BEGIN { printf "ring %4d-byte pair, ns (median of interleaved runs): asm %.2f, C %.2f, C/asm %.3f\n", s, a, c, c / a }'
done
