#!/bin/sh
# The library's ABI against the committed baseline abi/libpgfailover.abi.
#
#   check_abi.sh <built libpgfailover.so.1> <source dir>            check
#   check_abi.sh <built libpgfailover.so.1> <source dir> --update   rewrite the baseline
#
# abidw describes only the exported interface (the pgfo_* functions and the
# types reachable from them, as declared in include/), without source
# locations, parameter names or build paths, so that builds by other compilers
# and build types describe the same ABI. abidiff then compares baseline and
# build. Its exit status is a bit mask: 1 tool error, 2 usage error, 4 ABI
# change, 8 incompatible ABI change. abidiff sets bit 8 only for removals; a
# changed parameter list or a renumbered enumerator only sets bit 4. So the
# test fails on bit 8 and also on any removed or changed function or variable
# in abidiff's summaries; a change that only adds (functions, or enumerators
# appended, which abidiff filters as harmless) passes and is printed: update
# the baseline in the same commit (docs/ABI.md).
#
# Type information comes from DWARF (RelWithDebInfo and Debug builds have it).
# A build without debug info can only be compared by its exported symbols:
# then every baseline function must still be exported.
set -eu
lib=$1
src=$2
mode=${3:-check}
baseline=$src/abi/libpgfailover.abi
if ! command -v abidw >/dev/null 2>&1 || ! command -v abidiff >/dev/null 2>&1; then
  echo "SKIP: abidw/abidiff not installed (Debian: abigail-tools)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

has_debug_info() {
  readelf -S "$1" 2>/dev/null | grep -q '\.debug_info'
}

if ! has_debug_info "$lib"; then
  if [ "$mode" = --update ]; then
    echo "FAIL: $lib has no debug info; build with -DCMAKE_BUILD_TYPE=RelWithDebInfo to update the baseline"
    exit 1
  fi
  sed -n "s/.*<elf-symbol name='\([^']*\)'.*type='func-type'.*/\1/p" "$baseline" | sort -u >"$tmp/want"
  nm -D --defined-only "$lib" | awk '{ print $NF }' | sed 's/@.*//' | sort -u >"$tmp/have"
  missing=$(comm -23 "$tmp/want" "$tmp/have")
  if [ -n "$missing" ]; then
    echo "FAIL: functions of the baseline no longer exported:"; echo "$missing"; exit 1
  fi
  echo "ok (symbols only: $lib has no debug info): all $(wc -l <"$tmp/want") baseline functions exported"
  exit 0
fi

# Normalize: translation unit paths relative to the source dir, so the
# baseline names no build machine's directories.
abidw --headers-dir "$src/include" --drop-private-types --exported-interfaces-only \
      --no-show-locs --no-corpus-path --no-comp-dir-path --no-parameter-names \
      --no-elf-needed --type-id-style hash --out-file "$tmp/raw.abi" "$lib"
sed -e "s|path='$src/|path='|g" -e "s|path='[^']*/\(lib/[^']*\)'|path='\1'|g" \
    "$tmp/raw.abi" >"$tmp/current.abi"

if [ "$mode" = --update ]; then
  cp "$tmp/current.abi" "$baseline"
  echo "baseline written: $baseline ($(grep -c '<elf-symbol ' "$baseline") symbols)"
  exit 0
fi

set +e
abidiff --no-show-locs "$baseline" "$tmp/current.abi" >"$tmp/diff.txt" 2>&1
rc=$?
set -e
if [ $((rc & 3)) -ne 0 ]; then
  cat "$tmp/diff.txt"
  echo "FAIL: abidiff could not compare (exit status $rc)"
  exit 1
fi
# "Functions changes summary: 1 Removed, 2 Changed (3 filtered out), 0 Added ..."
removed_or_changed=$(sed -n 's/.*summary: \([0-9]*\) Removed[^,]*, \([0-9]*\) Changed.*/\1 \2/p' "$tmp/diff.txt" |
                     awk '{ n += $1 + $2 } END { print n + 0 }')
if [ $((rc & 8)) -ne 0 ] || [ "$removed_or_changed" -ne 0 ]; then
  cat "$tmp/diff.txt"
  echo "FAIL: incompatible ABI change against $baseline (abidiff exit status $rc)"
  exit 1
fi
if [ $((rc & 4)) -ne 0 ]; then
  cat "$tmp/diff.txt"
  echo "ok: compatible ABI change (e.g. functions added); update the baseline on purpose: see docs/ABI.md"
  exit 0
fi
echo "ok: ABI identical to the baseline ($(grep -c '<elf-symbol ' "$baseline") symbols)"
