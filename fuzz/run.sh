#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 180) on one core, seeded with
# the checked-in corpora (tests/fixtures/, including hostile/). Needs a
# nightly toolchain and `cargo install cargo-fuzz`. Findings land in
# fuzz/artifacts/<target>/; the grown corpus in fuzz/corpus/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-180}"
shift || true
targets=("$@")
((${#targets[@]})) || targets=(spec settings web_config prom_answer)
fixtures=../tests/fixtures
seed() {
  local target=$1; shift
  mkdir -p "corpus/$target"
  for d in "$@"; do
    [ -d "$d" ] && find "$d" -maxdepth 1 -type f -exec cp -n {} "corpus/$target/" \;
  done
}
seed spec "$fixtures/specs" "$fixtures/hostile/specs"
seed settings "$fixtures/hostile/settings" ../config
seed web_config "$fixtures/hostile/web"
seed prom_answer "$fixtures/prom-responses" "$fixtures/hostile/prom"
for t in "${targets[@]}"; do
  echo "==> $t for ${secs}s"
  CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}" cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=65536 -rss_limit_mb=1024 -timeout=5
done
