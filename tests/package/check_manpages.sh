#!/usr/bin/env bash
# The man pages render without a warning, and pgfailover(1) has a
# SUBCOMMANDS entry (.SS) for every subcommand `pgfailover --help' lists.
#
#   check_manpages.sh <pgfailover> <source dir>
set -euo pipefail
cli=$1
src=$2
fails=0
for page in "$src/docs/man/pgfailover.1" "$src/docs/man/pgfailover.conf.5"; do
  if command -v groff >/dev/null 2>&1; then
    warnings=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$page" 2>&1 || true)
    if [[ -n $warnings ]]; then echo "FAIL: ${page##*/}: $warnings"; fails=$((fails + 1))
    else echo "ok:   ${page##*/} renders without warnings"; fi
  else
    echo "skip: groff not installed, ${page##*/} not rendered"
  fi
done

# CLI11's help: "Subcommands:" (or "SUBCOMMANDS:") then one "  name  description" line each.
mapfile -t subcommands < <("$cli" --help | awk 'toupper($0) ~ /^SUBCOMMANDS:/ {on = 1; next}
                                              on && /^  [a-z]/ {print $1; next}
                                              on && /^[^ ]/ {on = 0}')
(( ${#subcommands[@]} )) || { echo "FAIL: no subcommands in '$cli --help'"; exit 1; }
# ".SS "follow\-primary [\-n] ..."" -> follow-primary
documented=$(sed -n '/^\.SH SUBCOMMANDS/,/^\.SH /{s/^\.SS "\{0,1\}\([a-z\\-]*\).*/\1/p}' "$src/docs/man/pgfailover.1" |
             sed 's/\\-/-/g')
for sc in "${subcommands[@]}"; do
  if grep -qx -- "$sc" <<<"$documented"; then echo "ok:   pgfailover.1 documents '$sc'"
  else echo "FAIL: pgfailover.1 has no SUBCOMMANDS entry (.SS $sc) for '$sc' (pgfailover --help lists it)"; fails=$((fails + 1)); fi
done
for sc in $documented; do
  printf '%s\n' "${subcommands[@]}" | grep -qx -- "$sc" ||
    { echo "FAIL: pgfailover.1 documents '$sc', which pgfailover --help does not list"; fails=$((fails + 1)); }
done
exit $(( fails > 0 ))
