#!/usr/bin/env bash
# The one command that checks everything: installs what the tests need on a
# fresh Debian machine (only when missing), then format, lint, unit +
# integration (against a real Prometheus) and doc tests.
# Rust and cargo-nextest are expected to be installed.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

need=()
for bin in prometheus promtool; do
  command -v "$bin" >/dev/null 2>&1 || need=(prometheus)
done
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v victoria-metrics >/dev/null 2>&1 || need+=(victoria-metrics)
[ -x /usr/bin/chromium ] || need+=(chromium chromium-driver)
# TLS tests make their CA and certificates with the openssl command.
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# Packaging: the static build (musl-gcc), the unit checks, the image build,
# the man page of the installed package.
command -v musl-gcc >/dev/null 2>&1 || need+=(musl-tools)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v buildah >/dev/null 2>&1 || need+=(buildah)
command -v man >/dev/null 2>&1 || need+=(man-db)
# Calendar tests take month boundaries from the system's zone database.
[ -e /usr/share/zoneinfo/Europe/Berlin ] || need+=(tzdata)
if ((${#need[@]})); then
  step "apt-get install ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends "${need[@]}"
fi
# The integration tests fail (never skip) without these; say so early and plainly.
for bin in /usr/bin/prometheus /usr/bin/promtool /usr/bin/prometheus-alertmanager /usr/bin/victoria-metrics /usr/bin/chromium; do
  [ -x "$bin" ] || { echo "missing $bin after install" >&2; exit 1; }
done

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

# Doc tests first, so the run closes on the main test summary.
step "doc tests"
cargo test --doc

cargo nextest --version >/dev/null 2>&1 \
  || { echo "cargo-nextest not found: install it with \`cargo install --locked cargo-nextest\`" >&2; exit 1; }
profile=default
[ "${CI:-}" = "true" ] && profile=ci

# Users run current servers, not only bookworm's 2023 ones: fetch Debian sid's
# builds (private apt lists and cache, unpacked with dpkg -x; the machine's apt
# setup is untouched) before any test runs, so a fetch failure stops early.
step "current backends (Debian sid, unpacked into .cache/backends)"
sid_env="$(scripts/backends.sh --env)"

# The static release build and the Debian package the packaging tests
# install and run (the glibc build is for releases, not tested here).
step "scripts/package.sh --static-only"
scripts/package.sh --static-only

step "unit and integration tests (bookworm: Prometheus $(/usr/bin/prometheus --version 2>&1 | head -1 | awk '{print $3}'))"
cargo nextest run --profile "$profile"

# Every test that talks to Prometheus, promtool, Alertmanager or
# VictoriaMetrics runs again on the current builds; only the browser and
# packaging tests, which need no backend, are not repeated.
step "backend tests on current builds"
(
  eval "$sid_env"
  echo "$ERRBUDGET_BACKENDS"
  cargo nextest run --profile "$profile" \
    -E 'binary(integration) - test(/^pages::/) - test(/^dashboards::panel_grid_pictures$/) - test(/^packaging::/)'
)

echo
echo "all checks passed"
