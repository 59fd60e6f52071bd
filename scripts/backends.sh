#!/usr/bin/env bash
# Current builds of the servers errbudget talks to, for the second test pass:
# Debian sid's prometheus, promtool, prometheus-alertmanager (with amtool) and
# victoria-metrics. Downloaded with a private sources list, lists directory and
# cache (the machine's apt configuration is never read or changed), unpacked
# with `dpkg -x` into a cache folder, and reused while the versions stay the same.
#
#   scripts/backends.sh          fetch (if needed), print the unpacked bin directory
#   scripts/backends.sh --env    fetch (if needed), print `export ERRBUDGET_...=` lines
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${ERRBUDGET_BACKENDS_CACHE:-$PWD/.cache/backends}"
suite="${ERRBUDGET_BACKENDS_SUITE:-sid}"
packages=(prometheus promtool prometheus-alertmanager victoria-metrics)
apt_dir="$cache/apt-$suite"
root="$cache/$suite"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs"

command -v apt-get >/dev/null && command -v dpkg >/dev/null \
  || { echo "backends.sh needs apt-get and dpkg (a Debian machine)" >&2; exit 1; }

printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian %s main\n' \
  "$suite" >"$apt_dir/sources.list"
opts=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::Etc::Preferences=/dev/null"
  -o "Dir::Etc::PreferencesParts=/dev/null"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::State::Status=/dev/null"
  -o "Dir::Cache=$apt_dir/cache"
  -o "Debug::NoLocking=1"
  -o "APT::Sandbox::User=root"
)

# The index is refreshed at most every 12 hours; a run without network reuses it.
stamp="$apt_dir/updated"
if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +720)" ]; then
  apt-get "${opts[@]}" -qq update >&2 && touch "$stamp"
fi

versions=""
for p in "${packages[@]}"; do
  v="$(apt-cache "${opts[@]}" show --no-all-versions "$p" 2>/dev/null | sed -n 's/^Version: //p' | head -1)"
  [ -n "$v" ] || { echo "backends.sh: $p not found in Debian $suite" >&2; exit 1; }
  versions+="$p=$v "
done

if [ "$(cat "$root/.versions" 2>/dev/null)" != "$versions" ]; then
  rm -rf "$root" "$apt_dir/debs"/*.deb
  (cd "$apt_dir/debs" && apt-get "${opts[@]}" -qq download "${packages[@]}" >&2)
  mkdir -p "$root"
  for deb in "$apt_dir/debs"/*.deb; do dpkg -x "$deb" "$root"; done
  printf '%s' "$versions" >"$root/.versions"
fi

bin="$root/usr/bin"
for b in prometheus promtool prometheus-alertmanager amtool victoria-metrics; do
  [ -x "$bin/$b" ] || { echo "backends.sh: $bin/$b missing after unpacking" >&2; exit 1; }
done

if [ "${1:-}" = "--env" ]; then
  echo "export ERRBUDGET_BACKENDS='$suite: $versions'"
  echo "export ERRBUDGET_PROMETHEUS='$bin/prometheus'"
  echo "export ERRBUDGET_PROMTOOL='$bin/promtool'"
  echo "export ERRBUDGET_ALERTMANAGER='$bin/prometheus-alertmanager'"
  echo "export ERRBUDGET_AMTOOL='$bin/amtool'"
  echo "export ERRBUDGET_VICTORIA_METRICS='$bin/victoria-metrics'"
else
  echo "$bin"
fi
