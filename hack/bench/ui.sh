#!/usr/bin/env bash
# Measures the web UI on a simulated cluster with days of history:
#   hack/bench/ui.sh NODES PODS_PER_NODE DAYS [INTERVAL]
# fills a store with `kubemon backfill` at INTERVAL (default 4m; kept in
# $KUBEMON_UI_BENCH_DIR, default /var/tmp/kubemon-ui-bench-NODES-PODS-DAYS-INTERVAL,
# and reused when it exists), then runs BenchmarkUIOverview (a fresh load of
# the overview until it is ready) and BenchmarkUIPod7d (a pod's seven-day
# charts, opened from another page) in Debian's headless chromium against
# `kubemon demo` continuing that cluster live at its own interval
# (UI_BENCH_LIVE_INTERVAL, default 10s). UI_BENCH_SIM_ARGS are further
# simulator flags for both (default: 2 containers a pod, seed 1, realistic
# mode); UI_BENCH_TIMES the loads a benchmark (default 10). See
# docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
usage="usage: hack/bench/ui.sh NODES PODS_PER_NODE DAYS [INTERVAL]"
nodes=${1:?$usage}
pods=${2:?$usage}
days=${3:?$usage}
interval=${4:-4m}
dir=${KUBEMON_UI_BENCH_DIR:-/var/tmp/kubemon-ui-bench-$nodes-$pods-${days}d-$interval}
read -r -a extra <<<"${UI_BENCH_SIM_ARGS:---containers-per-pod 2 --seed 1 --sim-mode realistic}"
sim=(--nodes "$nodes" --pods-per-node "$pods" "${extra[@]}")

if [ ! -d "$dir" ]; then
  go build -o /tmp/kubemon-ui-bench ./cmd/kubemon
  echo "ui bench: backfilling $days days of $nodes nodes × $pods pods at $interval into $dir"
  /usr/bin/time -v /tmp/kubemon-ui-bench backfill --data-dir "$dir.tmp" "${sim[@]}" \
    --interval "$interval" --duration "${days}d" 2>&1 |
    grep -E "level=(INFO|WARN|ERROR).*(done|failed|written)|Maximum resident|Elapsed" || true
  mv "$dir.tmp" "$dir"
fi
du -sh "$dir"
KUBEMON_E2E_CLUSTER=0 KUBEMON_UI_BENCH_DIR="$dir" \
  KUBEMON_UI_BENCH_ARGS="${sim[*]} --interval ${UI_BENCH_LIVE_INTERVAL:-10s}" \
  go test -run '^$' -bench 'BenchmarkUI' -benchtime "${UI_BENCH_TIMES:-10}x" -timeout 60m ./test/e2e
