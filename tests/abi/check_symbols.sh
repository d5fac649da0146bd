#!/bin/sh
# The library's promises, checked on the built file:
#  - its soname is libpgfailover.so.1;
#  - it exports only pgfo_* functions (plus the version node of the map);
#  - it references no function that ends its host process (pgpool's hook,
#    Python, Perl): exit, _exit, _Exit, quick_exit, abort.
set -eu
lib=$1
fail=0
soname=$(objdump -p "$lib" | awk '$1 == "SONAME" { print $2 }')
if [ "$soname" != "libpgfailover.so.1" ]; then
  echo "FAIL: soname is '$soname', expected libpgfailover.so.1"; fail=1
fi
leaked=$(nm -D --defined-only "$lib" | awk '{ print $NF }' | grep -v '^pgfo_' | grep -v '^PGFAILOVER_1$' || true)
if [ -n "$leaked" ]; then
  echo "FAIL: symbols exported besides pgfo_*:"; echo "$leaked"; fail=1
fi
count=$(nm -D --defined-only "$lib" | awk '{ print $NF }' | grep -c '^pgfo_' || true)
enders=$(nm -D --undefined-only "$lib" | awk '{ print $NF }' | sed 's/@.*//' |
         grep -xE 'exit|_exit|_Exit|quick_exit|abort' || true)
if [ -n "$enders" ]; then
  echo "FAIL: the library references process-ending functions:"; echo "$enders"; fail=1
fi
[ "$fail" -eq 0 ] && echo "ok: soname $soname, $count pgfo_* symbols exported, nothing else, no exit/abort references"
exit "$fail"
