#!/bin/sh
# nasm-lt.sh - let libtool drive NASM.
#
# `libtool --mode=compile` calls its "compiler" the way it calls cc: with
# -c, with -fPIC -DPIC for the PIC object, -o OUTPUT, and the source.
# NASM reads -fPIC as "output format PIC", so drop the cc-only flags and
# pass the rest (-f elf64, -D, -I, -o, the source) through.
#   usage: nasm-lt.sh NASM [flags...] source.asm -o object
set -eu
nasm=$1
shift
for arg in "$@"; do
    shift
    case $arg in
        -c|-fPIC|-fpic|-fno-common|-prefer-pic|-prefer-non-pic|-static|-shared) ;;
        *) set -- "$@" "$arg" ;;
    esac
done
exec "$nasm" "$@"
