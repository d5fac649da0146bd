#!/usr/bin/env bash
# Build the RPM packages from the working tree and check them:
#   1. a source tarball pgfailover-<version>.tar.gz of the tree (the files
#      git lists, tracked and untracked-but-not-ignored; without git, the
#      tree minus build directories);
#   2. rpmbuild --nodeps -ba packaging/rpm/pgfailover.spec in a private
#      _topdir (the build, the unit tests in %check, the install);
#   3. rpmlint on every package, with the accepted findings in
#      packaging/rpm/rpmlintrc (each one explained there);
#   4. each binary package's file list (rpm -qlp) and requirements
#      (rpm -qRp) against packaging/rpm/expected/<package>.{files,requires}.txt,
#      so that a change to what ships shows up in review.
#
#   build-rpm.sh [--outdir DIR] [--update-expected]
#
#   --outdir DIR         copy the built .rpm files to DIR
#   --update-expected    rewrite the expected lists from this build
#
# Environment: PGFO_JOBS (default 2) build jobs; PGFO_KEEP_TMP=1 keeps the
# temporary _topdir. Exit code 77 (ctest: skipped) without rpmbuild.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# source_files (what the tarball holds) and $src, the tree's top.
source "$here/../../scripts/common.sh"
spec=$here/pgfailover.spec
outdir=
update=0
while (($#)); do
  case $1 in
    --outdir) outdir=$2; shift 2 ;;
    --update-expected) update=1; shift ;;
    *) echo "usage: $0 [--outdir DIR] [--update-expected]" >&2; exit 2 ;;
  esac
done

for tool in rpmbuild rpmspec rpm; do
  command -v "$tool" >/dev/null 2>&1 || { echo "skip: $tool not installed (Debian package rpm)"; exit 77; }
done
jobs=${PGFO_JOBS:-2}
start=$SECONDS

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pgfo-rpm.XXXXXXXX")
cleanup() {
  if [[ ${PGFO_KEEP_TMP:-0} == 1 ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
top=$tmp/rpmbuild
mkdir -p "$top"/{BUILD,BUILDROOT,RPMS,SOURCES,SPECS,SRPMS} "$tmp/home" "$tmp/tmp"
# No ~/.rpmmacros of whoever runs this; rpmbuild's scratch files stay here.
# A locale every machine has (perl, run while the spec is parsed, warns
# about a missing one, and rpmlint reports that as a spec error).
export HOME=$tmp/home TMPDIR=$tmp/tmp LC_ALL=C.UTF-8 LANG=C.UTF-8
unset LANGUAGE
rpmdefs=(--define "_topdir $top" --define "_tmppath $tmp/tmp"
         --define "_smp_mflags -j$jobs" --define "_smp_build_ncpus $jobs")

version=$(rpmspec -q --srpm --qf '%{version}' "${rpmdefs[@]}" "$spec")
release=$(rpmspec -q --srpm --qf '%{release}' "${rpmdefs[@]}" "$spec")
cmake_version=$(sed -n 's/^project(pgfailover VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
if [[ $version != "$cmake_version" ]]; then
  echo "FAIL: the spec's Version $version is not the project's VERSION $cmake_version (CMakeLists.txt)"
  exit 1
fi
echo "== pgfailover $version-$release"

# ---------------------------------------------------------------- tarball
# A file this user cannot read (a private file of whoever else works in the
# tree) is left out, visibly, instead of failing the tarball.
readable_only() {
  local f
  while IFS= read -r -d '' f; do
    if [[ -L "$src/$f" || -r "$src/$f" ]]; then printf '%s\0' "$f"
    else echo "warning: not readable, left out of the tarball: $f" >&2; fi
  done
}
source_files | readable_only | tar -C "$src" --null -T - --transform "flags=r;s|^|pgfailover-$version/|" \
  --owner=0 --group=0 -czf "$top/SOURCES/pgfailover-$version.tar.gz"
cp "$spec" "$top/SPECS/"
echo "== source tarball: $(tar -tzf "$top/SOURCES/pgfailover-$version.tar.gz" | wc -l) entries"

# ---------------------------------------------------------------- rpmbuild
echo "== rpmbuild --nodeps -ba (build, unit tests, install; -j$jobs)"
if ! rpmbuild --nodeps -ba "${rpmdefs[@]}" "$top/SPECS/pgfailover.spec" >"$tmp/rpmbuild.log" 2>&1; then
  tail -n 80 "$tmp/rpmbuild.log"
  echo "FAIL: rpmbuild (the last 80 lines of its log above)"
  exit 1
fi
grep -E '^(Wrote|Checking for unpackaged|warning)' "$tmp/rpmbuild.log" || true
grep -E 'tests passed|tests failed' "$tmp/rpmbuild.log" | sed 's/^/%check: /' || true
echo "== rpmbuild done in $((SECONDS - start)) s"

mapfile -t rpms < <(find "$top/RPMS" -name '*.rpm' | sort)
mapfile -t srpms < <(find "$top/SRPMS" -name '*.rpm' | sort)
fails=0

# ---------------------------------------------------------------- rpmlint
if command -v rpmlint >/dev/null 2>&1; then
  echo "== rpmlint (accepted findings: packaging/rpm/rpmlintrc)"
  status=0
  rpmlint -r "$here/rpmlintrc" "${rpms[@]}" "${srpms[@]}" >"$tmp/rpmlint.log" 2>&1 || status=$?
  cat "$tmp/rpmlint.log"
  if ((status != 0)); then
    echo "FAIL: rpmlint reported errors (exit $status)"
    fails=$((fails + 1))
  fi
else
  echo "== rpmlint not installed: not run"
fi

# ------------------------------------------------- file lists and Requires
# Values that depend on the build host are written as the spec's macros.
libdir=$(rpm --eval '%{_libdir}')
pysitelib=$(rpm --eval '%{?python3_sitelib}')
[[ -n $pysitelib ]] || pysitelib=$(python3 -c "import sysconfig; print(sysconfig.get_path('purelib', 'posix_prefix', vars={'base': '$(rpm --eval '%{_prefix}')'}))")
perlver=$(perl -e 'print $^V =~ s/^v//r' 2>/dev/null || echo none)
pyver=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo none)
# Left out: rpm's own rpmlib() features, build-id links (they change with
# every build), and the C/C++ runtime's symbol versions (GLIBC_2.34,
# GLIBCXX_3.4.29: they follow the toolchain, not pgfailover); the libraries
# themselves, and libpgfailover's own version node, stay. Man pages are
# listed as the spec lists them (compressed or not, by the distribution).
normalize() {
  sed -e "s|$version-$release|%{version}-%{release}|g" \
      -e "s|libpgfailover\.so\.$version|libpgfailover.so.%{version}|g" \
      -e "s|^$pysitelib/|%{python3_sitelib}/|;s|^$pysitelib\$|%{python3_sitelib}|" \
      -e "s|^$libdir/|%{_libdir}/|" \
      -e "s#^\(/usr/share/\(doc\|licenses\)/[^/]*\)-$version#\1#" \
      -e "s#^\(/usr/share/man/man[0-9]/.*\)\.\(gz\|bz2\|xz\|zst\)\$#\1#" \
      -e "s|^/usr/share/man/man[0-9]/.*|&*|" \
      -e "s|MODULE_COMPAT_$perlver)|MODULE_COMPAT_%{perl_version})|" \
      -e "s|^python(abi) = $pyver\$|python(abi) = %{python3_version}|" \
      -e '/^rpmlib(/d' \
      -e '\|^/usr/lib/\.build-id|d' \
      -e '/^\(libc\|libm\|libstdc++\|libgcc_s\|ld-linux-[^ ]*\)\.so[.0-9]*([A-Z]*_[0-9.]*)(64bit)$/d' |
    LC_ALL=C sort -u
}
mkdir -p "$tmp/actual"
for rpmfile in "${rpms[@]}"; do
  name=$(rpm -qp --qf '%{name}' "$rpmfile" 2>/dev/null)
  case $name in *-debuginfo | *-debugsource) continue ;; esac
  rpm -qlp "$rpmfile" 2>/dev/null | normalize >"$tmp/actual/$name.files.txt"
  rpm -qRp "$rpmfile" 2>/dev/null | normalize >"$tmp/actual/$name.requires.txt"
  echo "== $name ($(basename "$rpmfile"))"
  echo "-- rpm -qlp"; rpm -qlp "$rpmfile" 2>/dev/null | sed 's/^/   /'
  echo "-- rpm -qRp"; rpm -qRp "$rpmfile" 2>/dev/null | sed 's/^/   /'
done
if ((update)); then
  rm -f "$here"/expected/*.txt
  mkdir -p "$here/expected"
  cp "$tmp"/actual/*.txt "$here/expected/"
  echo "== expected lists rewritten in packaging/rpm/expected"
fi
# Every expected list must have a package, and every package its lists.
for f in "$here"/expected/*.txt; do
  [[ -e $tmp/actual/${f##*/} ]] || { echo "FAIL: no package for expected/${f##*/}"; fails=$((fails + 1)); }
done
for f in "$tmp"/actual/*.txt; do
  exp=$here/expected/${f##*/}
  if [[ ! -e $exp ]]; then
    echo "FAIL: no expected/${f##*/}; this build has:"; sed 's/^/   /' "$f"; fails=$((fails + 1))
  elif ! diff -u --label "expected/${f##*/}" --label "built" <(grep -v '^#' "$exp" | LC_ALL=C sort) "$f"; then
    echo "FAIL: ${f##*/} differs from expected/${f##*/} (- expected, + built; --update-expected rewrites it)"
    fails=$((fails + 1))
  else
    echo "ok:   ${f##*/} as expected ($(wc -l <"$f") lines)"
  fi
done

if [[ -n $outdir ]]; then
  mkdir -p "$outdir"
  cp "${rpms[@]}" "${srpms[@]}" "$outdir/"
  echo "== packages copied to $outdir"
fi
echo "== done in $((SECONDS - start)) s"
((fails == 0)) || { echo "$fails check(s) failed"; exit 1; }
