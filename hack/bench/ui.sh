#!/usr/bin/env bash
# Measures the web UI on a simulated cluster with days of history:
#   hack/bench/ui.sh NODES PODS_PER_NODE DAYS [INTERVAL]
# fills a store with `kubemon backfill` (kept in $KUBEMON_UI_BENCH_DIR,
# default /var/tmp/kubemon-ui-bench-NODES-PODS-DAYS-INTERVAL, and reused
# when it exists), then runs BenchmarkUIOverview (a fresh load of the
# overview until it is ready) and BenchmarkUIPod7d (a pod's seven-day charts,
# opened from another page) in Debian's headless chromium against
# `kubemon demo` continuing that cluster live. See docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
nodes=${1:?usage: hack/bench/ui.sh NODES PODS_PER_NODE DAYS [INTERVAL]}
pods=${2:?usage: hack/bench/ui.sh NODES PODS_PER_NODE DAYS [INTERVAL]}
days=${3:?usage: hack/bench/ui.sh NODES PODS_PER_NODE DAYS [INTERVAL]}
interval=${4:-15s}
dir=${KUBEMON_UI_BENCH_DIR:-/var/tmp/kubemon-ui-bench-$nodes-$pods-${days}d-$interval}
sim=(--nodes "$nodes" --pods-per-node "$pods" --interval "$interval")

if [ ! -d "$dir" ]; then
  go build -o /tmp/kubemon-ui-bench ./cmd/kubemon
  echo "ui bench: backfilling $days days of $nodes nodes × $pods pods at $interval into $dir"
  /usr/bin/time -v /tmp/kubemon-ui-bench backfill --data-dir "$dir.tmp" "${sim[@]}" --duration "${days}d" 2>&1 |
    grep -E "level=(INFO|WARN|ERROR).*(done|failed|written)|Maximum resident|Elapsed" || true
  mv "$dir.tmp" "$dir"
fi
du -sh "$dir"
KUBEMON_E2E_CLUSTER=0 KUBEMON_UI_BENCH_DIR="$dir" KUBEMON_UI_BENCH_ARGS="${sim[*]}" \
  go test -run '^$' -bench 'BenchmarkUI' -benchtime "${UI_BENCH_TIMES:-10}x" -timeout 60m ./test/e2e
