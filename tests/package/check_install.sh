#!/usr/bin/env bash
# Install a build into a temporary prefix (cmake --install --prefix) and use
# it the way a user of the installed files would:
#   - the file list (CLI, library and soname links, header, pgfailover.pc,
#     CMake package, configuration, hooks, man pages, bindings);
#   - the installed CLI runs through its RPATH (no LD_LIBRARY_PATH);
#   - a C program built through pkg-config, and one through
#     find_package(pgfailover), print pgfo_version() == PGFO_VERSION_STRING;
#   - the Python and Perl bindings load from the installed directories.
#
#   check_install.sh <build dir> <source dir>
set -euo pipefail
build=$1
src=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pgfo-install.XXXXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fails=0
ok()   { echo "ok:   $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" ||
  { cat "$tmp/install.log"; echo "FAIL: cmake --install"; exit 1; }

version=$(sed -n 's/^#define PGFO_VERSION_STRING "\(.*\)"$/\1/p' "$src/include/pgfailover.h")
[[ -n $version ]] || { echo "FAIL: no PGFO_VERSION_STRING in pgfailover.h"; exit 1; }

# GNUInstallDirs' libdir: lib, lib64 or lib/<multiarch>, depending on the host.
libdir=$(cd "$prefix" && dirname "$(find . -name 'libpgfailover.so.1' | head -n 1)")
libdir=${libdir#./}
[[ -n $libdir && $libdir != . ]] || { echo "FAIL: libpgfailover.so.1 not installed"; find "$prefix"; exit 1; }
echo "prefix $prefix, libdir $libdir, version $version"

# ------------------------------------------------------------ the file list
expect_file() { [[ -f $prefix/$1 ]] && ok "$1" || fail "missing $1"; }
expect_link() {
  if [[ -L $prefix/$1 && $(readlink "$prefix/$1") == "$2" ]]; then ok "$1 -> $2"
  else fail "$1 is not a link to $2 ($(readlink "$prefix/$1" 2>/dev/null || echo none))"; fi
}
expect_file bin/pgfailover
[[ -x $prefix/bin/pgfailover ]] || fail "bin/pgfailover is not executable"
expect_file "$libdir/libpgfailover.so.$version"
expect_link "$libdir/libpgfailover.so.1" "libpgfailover.so.$version"
expect_link "$libdir/libpgfailover.so" libpgfailover.so.1
expect_file include/pgfailover.h
expect_file "$libdir/pkgconfig/pgfailover.pc"
for f in pgfailoverConfig.cmake pgfailoverConfigVersion.cmake pgfailoverTargets.cmake; do
  expect_file "$libdir/cmake/pgfailover/$f"
done
expect_file etc/pgfailover/pgfailover.conf
cmp -s "$src/conf/pgfailover.conf" "$prefix/etc/pgfailover/pgfailover.conf" ||
  fail "etc/pgfailover/pgfailover.conf differs from conf/pgfailover.conf"
expect_file share/pgfailover/hooks/failover.sh
[[ -x $prefix/share/pgfailover/hooks/failover.sh ]] || fail "hooks/failover.sh is not executable"
expect_file share/pgfailover/hooks/follow_primary.sh
[[ -x $prefix/share/pgfailover/hooks/follow_primary.sh ]] || fail "hooks/follow_primary.sh is not executable"
for f in fence_nftables.sh fence_ipmi.sh; do
  expect_file share/pgfailover/hooks/$f
  [[ -x $prefix/share/pgfailover/hooks/$f ]] || fail "hooks/$f is not executable"
done
expect_file share/pgfailover/hooks/pgpool.conf.sample
expect_file share/man/man1/pgfailover.1
expect_file share/man/man5/pgfailover.conf.5
pydir=$(cd "$prefix" && dirname "$(find . -path '*/pgfailover/__init__.py' | head -n 1)")
pydir=${pydir%/pgfailover}
[[ $pydir == ./lib/python3* ]] && ok "Python package in ${pydir#./}" || fail "Python package not under lib/python3*: $pydir"
expect_file share/perl5/PgFailover.pm

# Nothing installed that nobody asked for (a build artefact, a test binary).
(cd "$prefix" && find . \( -type f -o -type l \) | sed 's|^\./||' | sort) >"$tmp/files"
unexpected=$(grep -Ev "^(bin/pgfailover|$libdir/libpgfailover\.so(\.[0-9.]+)?|include/pgfailover\.h|$libdir/pkgconfig/pgfailover\.pc|$libdir/cmake/pgfailover/pgfailover[A-Za-z-]*\.cmake|etc/pgfailover/pgfailover\.conf|share/pgfailover/hooks/(failover\.sh|follow_primary\.sh|fence_nftables\.sh|fence_ipmi\.sh|pgpool\.conf\.sample)|share/man/man[15]/pgfailover(\.conf)?\.[15]|lib/python3[^/]*/site-packages/pgfailover/[^/]+\.py|share/perl5/PgFailover\.pm)$" "$tmp/files" || true)
[[ -z $unexpected ]] && ok "no unexpected files" || fail "unexpected files installed: $unexpected"

# ------------------------------------------------- the installed CLI, RPATH
runpath=$(readelf -d "$prefix/bin/pgfailover" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p;s/.*(RPATH).*\[\(.*\)\]/\1/p')
[[ $runpath == *'$ORIGIN'* ]] && ok "bin/pgfailover RUNPATH $runpath" || fail "bin/pgfailover has no \$ORIGIN RUNPATH: '$runpath'"
[[ $runpath != *"$build"* ]] || fail "bin/pgfailover RUNPATH names the build directory: $runpath"
if out=$(env -u LD_LIBRARY_PATH "$prefix/bin/pgfailover" version 2>&1); then
  [[ $out == "pgfailover $version (libpgfailover $version)" ]] && ok "pgfailover version: $out" ||
    fail "pgfailover version printed '$out'"
  resolved=$(env -u LD_LIBRARY_PATH ldd "$prefix/bin/pgfailover" | sed -n 's/.*libpgfailover.so.1 => \([^ ]*\).*/\1/p')
  [[ $(realpath "$resolved") == $(realpath "$prefix/$libdir/libpgfailover.so.1") ]] &&
    ok "bin/pgfailover loads $resolved" || fail "bin/pgfailover loads '$resolved', not the installed library"
else
  fail "installed pgfailover version failed: $out"
fi

# --------------------------------------------------- C program, pkg-config
cat >"$tmp/version.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <pgfailover.h>
int main(void) {
    printf("%s\n", pgfo_version());
    if (strcmp(pgfo_version(), PGFO_VERSION_STRING) != 0) {
        fprintf(stderr, "pgfo_version() %s != PGFO_VERSION_STRING %s\n", pgfo_version(), PGFO_VERSION_STRING);
        return 1;
    }
    return pgfo_version_number() == PGFO_VERSION_NUM ? 0 : 1;
}
C
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
# The .pc names the configured prefix; relocate it to where we installed.
pc="pkg-config --define-variable=prefix=$prefix"
if [[ $($pc --modversion pgfailover) == "$version" ]]; then ok "pkg-config --modversion $version"
else fail "pkg-config --modversion: $($pc --modversion pgfailover 2>&1)"; fi
# shellcheck disable=SC2046
if ${CC:-cc} -Wall -Werror -o "$tmp/version-pc" "$tmp/version.c" $($pc --cflags --libs pgfailover) 2>"$tmp/cc.log"; then
  if out=$(LD_LIBRARY_PATH=$prefix/$libdir "$tmp/version-pc"); then ok "pkg-config program: pgfo_version() $out"
  else fail "pkg-config program: '$out'"; fi
else
  cat "$tmp/cc.log"; fail "compile through pkg-config"
fi

# ----------------------------------------------- C program, CMake package
mkdir -p "$tmp/consumer"
cp "$tmp/version.c" "$tmp/consumer/"
cat >"$tmp/consumer/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.18)
project(consumer LANGUAGES C)
find_package(pgfailover $version REQUIRED CONFIG)
add_executable(version version.c)
target_link_libraries(version PRIVATE pgfailover::pgfailover)
CM
if cmake -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_PREFIX_PATH="$prefix" \
     >"$tmp/consumer.log" 2>&1 && cmake --build "$tmp/consumer/build" >>"$tmp/consumer.log" 2>&1; then
  # The build tree's RPATH names the imported library's directory.
  if out=$(env -u LD_LIBRARY_PATH "$tmp/consumer/build/version"); then ok "CMake package program: pgfo_version() $out"
  else fail "CMake package program: '$out'"; fi
else
  cat "$tmp/consumer.log"; fail "build through find_package(pgfailover)"
fi

# ----------------------------------------------------------------- bindings
lib=$prefix/$libdir/libpgfailover.so.1
if out=$(cd "$tmp" && env PYTHONPATH="$prefix/${pydir#./}" PGFAILOVER_LIBRARY="$lib" PYTHONDONTWRITEBYTECODE=1 \
           python3 -c 'import pgfailover; print(pgfailover.__file__, pgfailover.version())' 2>&1) &&
   [[ $out == "$prefix/"*" $version" ]]; then ok "Python: $out"
else fail "Python binding from the prefix: $out"; fi
if perl -MFFI::Platypus -e 1 2>/dev/null; then
  if out=$(cd "$tmp" && env PGFAILOVER_LIBRARY="$lib" perl -I"$prefix/share/perl5" -MPgFailover \
             -e 'print $INC{"PgFailover.pm"}, " ", PgFailover->version, "\n"' 2>&1) &&
     [[ $out == "$prefix/"*" $version" ]]; then ok "Perl: $out"
  else fail "Perl binding from the prefix: $out"; fi
else
  echo "skip: Perl binding (no FFI::Platypus)"
fi

if (( fails )); then
  echo "$fails check(s) failed; installed files:"; cat "$tmp/files"; exit 1
fi
echo "all checks passed"
