#!/usr/bin/env bash
# Starts the demo stack on this machine and keeps it running until Ctrl-C:
#   trafficgen (cargo example) -> Prometheus (scrapes it and errbudget every
#   5s) -> errbudget run (demo config in scripts/demo/) -> Alertmanager
#   (the routing and inhibit rule of config/alertmanager.example.yml).
# Ports (loopback): PROM_PORT (9090), ERRBUDGET_PORT (9465),
# TRAFFICGEN_PORT (9101), ALERTMANAGER_PORT (9093). DEMO_DIR: work dir
# (default: a new temp dir).
# Extra trafficgen flags: TRAFFICGEN_ARGS, e.g. "--incident-every 10m".
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
PROM_PORT="${PROM_PORT:-9090}"
ERRBUDGET_PORT="${ERRBUDGET_PORT:-9465}"
TRAFFICGEN_PORT="${TRAFFICGEN_PORT:-9101}"
ALERTMANAGER_PORT="${ALERTMANAGER_PORT:-9093}"
DEMO_DIR="${DEMO_DIR:-$(mktemp -d -t errbudget-demo.XXXXXX)}"
read -r -a tg_args <<<"${TRAFFICGEN_ARGS:-}"

need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
if ((${#need[@]})); then
  echo "==> installing ${need[*]} (apt)"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${need[@]}"
fi

echo "==> building errbudget and trafficgen"
(cd "$repo" && cargo build --bin errbudget --example trafficgen)
bin="$repo/target/debug"

mkdir -p "$DEMO_DIR/slos" "$DEMO_DIR/data" "$DEMO_DIR/alertmanager"
cp "$repo"/scripts/demo/slos/*.yaml "$DEMO_DIR/slos/"
sed -e "s#http://127.0.0.1:9090#http://127.0.0.1:${PROM_PORT}#" \
    -e "s#http://127.0.0.1:9093#http://127.0.0.1:${ALERTMANAGER_PORT}#" \
    -e "s#127.0.0.1:9465#127.0.0.1:${ERRBUDGET_PORT}#" \
    "$repo/scripts/demo/errbudget.yaml" >"$DEMO_DIR/errbudget.yaml"
# The README's routing as shipped. Its receivers are placeholders
# (example.com): Alertmanager shows the alerts and logs the failed
# notifications.
cp "$repo/config/alertmanager.example.yml" "$DEMO_DIR/alertmanager.yml"
cat >"$DEMO_DIR/prometheus.yml" <<YAML
global:
  scrape_interval: 5s
  evaluation_interval: 5s
scrape_configs:
  - job_name: trafficgen
    static_configs:
      - targets: ["127.0.0.1:${TRAFFICGEN_PORT}"]
  - job_name: errbudget
    static_configs:
      - targets: ["127.0.0.1:${ERRBUDGET_PORT}"]
YAML

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "==> stopping the demo"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "logs and data kept in $DEMO_DIR"
}
trap cleanup INT TERM EXIT

wait_http() { # url, name
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.3
  done
  echo "$2 did not come up at $1; see $DEMO_DIR/*.log" >&2
  exit 1
}

"$bin/examples/trafficgen" --listen "127.0.0.1:${TRAFFICGEN_PORT}" "${tg_args[@]}" \
  >"$DEMO_DIR/trafficgen.log" 2>&1 &
pids+=($!)
prometheus --config.file="$DEMO_DIR/prometheus.yml" \
  --storage.tsdb.path="$DEMO_DIR/data" \
  --web.listen-address="127.0.0.1:${PROM_PORT}" \
  >"$DEMO_DIR/prometheus.log" 2>&1 &
pids+=($!)
prometheus-alertmanager --config.file="$DEMO_DIR/alertmanager.yml" \
  --storage.path="$DEMO_DIR/alertmanager" \
  --web.listen-address="127.0.0.1:${ALERTMANAGER_PORT}" \
  --cluster.listen-address= \
  >"$DEMO_DIR/alertmanager.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:${TRAFFICGEN_PORT}/metrics" trafficgen
wait_http "http://127.0.0.1:${PROM_PORT}/-/ready" Prometheus
wait_http "http://127.0.0.1:${ALERTMANAGER_PORT}/-/ready" Alertmanager
"$bin/errbudget" run --config.file "$DEMO_DIR/errbudget.yaml" \
  --web.listen-address "127.0.0.1:${ERRBUDGET_PORT}" \
  >"$DEMO_DIR/errbudget.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:${ERRBUDGET_PORT}/-/healthy" errbudget

cat <<TXT

errbudget demo is running (work dir: $DEMO_DIR)
  Prometheus         http://127.0.0.1:${PROM_PORT}/
  errbudget status   http://127.0.0.1:${ERRBUDGET_PORT}/
  errbudget metrics  http://127.0.0.1:${ERRBUDGET_PORT}/metrics
  errbudget API      http://127.0.0.1:${ERRBUDGET_PORT}/api/v1/slos
  Alertmanager       http://127.0.0.1:${ALERTMANAGER_PORT}/#/alerts
  trafficgen         http://127.0.0.1:${TRAFFICGEN_PORT}/metrics
Short windows fill within minutes. With the default trafficgen flags an
incident on checkout (30% errors, slow requests) starts 6 minutes in, lasts
4 minutes and repeats every 10 minutes; the 1h/5m page fires about 3 minutes
into it and shows in Alertmanager (the checkout tickets stay inhibited):
  amtool --alertmanager.url=http://127.0.0.1:${ALERTMANAGER_PORT} alert query
Press Ctrl-C to stop.
TXT

# Exit (and clean up) as soon as any component dies.
wait -n "${pids[@]}"
echo "a component exited; see $DEMO_DIR/*.log" >&2
exit 1
