#!/usr/bin/env bash
# Measures kubemon serve against a simulated cluster in a separate process:
# per-cycle CPU time, peak memory, samples stored and scrape latency.
# PROFILE=cpu.pprof and HEAPPROFILE=heap.pprof save the profiles (and
# heap.pprof.start, the heap profile as the measurement starts); SERVE_ARGS
# are more arguments for kubemon serve (e.g. "--metrics-drop=…"), SERVE_ENV
# more environment for it alone (e.g. "GOMEMLIMIT=3686MiB", what a 4 GiB
# container limit sets; the simulator runs without it). SEED_DATA=DIR starts
# serve on a copy of DIR (e.g. 24 h written by kubemon backfill), so the
# measurement includes the history kept. SIM_ARGS are more arguments for the
# simulator (e.g. "--sim-mode constant": no pod churn, to match a backfill
# written with the same flag).
#
# Besides VmHWM (the peak of all resident memory), the script samples the
# serve process's /proc status every second from its start and prints the
# peaks of its anonymous memory (RssAnon: the heap, what a container's limit
# cannot reclaim) and of its file-backed pages (RssFile: the store's
# memory-mapped blocks and chunks, page cache the kernel reclaims under a
# limit; the binary's pages count there too), and the TSDB's compactions over the whole run.
#
#   hack/scale.sh [NODES] [PODS_PER_NODE] [CYCLES] [INTERVAL]   (defaults 1000 30 8 15s)
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=${1:-1000} pods=${2:-30} cycles=${3:-8} interval=${4:-15s}
secs=${interval%s}

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/kubemon" ./cmd/kubemon

"$work/kubemon" sim --nodes "$nodes" --pods-per-node "$pods" --listen 127.0.0.1:0 ${SIM_ARGS:-} >"$work/sim.out" 2>"$work/sim.err" &
pids+=($!)
sim_pid=$!
for _ in $(seq 100); do grep -q 'node list at' "$work/sim.out" 2>/dev/null && break; sleep 0.2; done
nodes_url=$(grep -o 'http://[^ ]*/api/v1/nodes' "$work/sim.out" | head -n1)

if [ -n "${SEED_DATA:-}" ]; then cp -a "$SEED_DATA" "$work/data"; fi
env ${SERVE_ENV:-} "$work/kubemon" serve --nodes-url "$nodes_url" --kubelet-scheme http --listen 127.0.0.1:0 --enable-pprof \
  --data-dir "$work/data" --interval "$interval" ${SERVE_ARGS:-} >"$work/serve.out" 2>"$work/serve.err" &
pids+=($!)
pid=$!
# Peak RssAnon and RssFile (kB), sampled every second until serve exits.
(a=0 f=0
while st=$(cat "/proc/$pid/status" 2>/dev/null); do
  read -r an fl < <(awk '/^RssAnon/ {a=$2} /^RssFile/ {f=$2} END {print a+0, f+0}' <<<"$st")
  if [ "$an" -gt "$a" ] || [ "$fl" -gt "$f" ]; then
    a=$((an > a ? an : a)) f=$((fl > f ? fl : f))
    echo "$a $f" >"$work/rsspeak"
  fi
  sleep 1
done) &
pids+=($!)
for _ in $(seq 100); do grep -q 'kubemon serving' "$work/serve.err" 2>/dev/null && break; sleep 0.2; done
base=$(grep -o 'addr=http://[^ ]*' "$work/serve.err" | head -n1 | cut -d= -f2)

for _ in $(seq 600); do [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/readyz")" = 200 ] && break; sleep 1; done
sleep "$secs" # one more cycle: every node has rates

ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
metric() { curl -s "$base/metrics" | awk -v m="$1" '$1==m {printf "%.6f\n", $2}'; }
hz=$(getconf CLK_TCK)
cpu0=$(ticks "$pid"); simcpu0=$(ticks "$sim_pid"); s0=$(metric kubemon_store_samples_appended_total)
d0=$(metric kubemon_scrape_duration_seconds_sum); n0=$(metric kubemon_scrape_duration_seconds_count)
a0=$(metric go_memstats_alloc_bytes_total)
failures() { curl -s "$base/metrics" | awk '/^kubemon_scrape_failures_total/ {s+=$2} END {print s+0}'; }
f0=$(failures); errlines0=$(grep -c 'scrape failed' "$work/serve.err" || true)
t0=$(date +%s.%N)
if [ -n "${PROFILE:-}" ]; then
  curl -s -o "$PROFILE" "$base/debug/pprof/profile?seconds=$((cycles * secs - 2))" &
fi
if [ -n "${HEAPPROFILE:-}" ]; then # the measured cycles' allocations: go tool pprof -base HEAPPROFILE.start HEAPPROFILE
  curl -s -o "$HEAPPROFILE.start" "$base/debug/pprof/heap"
fi
min_nodes=""
for _ in $(seq "$cycles"); do # every cycle's node count: the least is what the cluster lost
  sleep "$secs"
  c=$(metric kubemon_pipeline_cycle_nodes | cut -d. -f1)
  if [ -z "$min_nodes" ] || [ "${c:-0}" -lt "$min_nodes" ]; then min_nodes=${c:-0}; fi
done
t1=$(date +%s.%N)
cpu1=$(ticks "$pid"); simcpu1=$(ticks "$sim_pid"); s1=$(metric kubemon_store_samples_appended_total)
d1=$(metric kubemon_scrape_duration_seconds_sum); n1=$(metric kubemon_scrape_duration_seconds_count)
a1=$(metric go_memstats_alloc_bytes_total)
f1=$(failures)
series=$(metric prometheus_tsdb_head_series | cut -d. -f1)

wall=$(echo "$t1 - $t0" | bc -l)
n_cycles=$(echo "$wall / $secs" | bc -l)
printf 'cluster:              %d nodes x %d pods x 2 containers, interval %s, %.0f s measured\n' "$nodes" "$pods" "$interval" "$wall"
printf 'kubemon CPU per cycle: %.2f s (%.0f%% of one core)\n' "$(echo "($cpu1-$cpu0)/$hz/$n_cycles" | bc -l)" "$(echo "100*($cpu1-$cpu0)/$hz/$wall" | bc -l)"
printf 'simulator CPU/cycle:  %.2f s\n' "$(echo "($simcpu1-$simcpu0)/$hz/$n_cycles" | bc -l)"
printf 'allocated per cycle:  %.0f MB\n' "$(echo "($a1-$a0)/$n_cycles/1000000" | bc -l)"
printf 'samples per cycle:    %.0f\n' "$(echo "($s1-$s0)/$n_cycles" | bc -l)"
printf 'head series:          %s\n' "$series"
printf 'mean scrape duration: %.1f ms\n' "$(echo "1000*($d1-$d0)/($n1-$n0)" | bc -l)"
printf 'scrape failures:      %d while measured, %d before\n' "$((f1 - f0))" "$f0"
errs() { sed -e 's/.* err=//' -e 's/[0-9.]*:[0-9]*/ADDR/g' -e 's/node-[0-9]*/NODE/g' | sort | uniq -c | sort -rn | head -n 3; }
if [ "$f1" -gt 0 ]; then # what failed, by error (node names and addresses left out)
  grep 'scrape failed' "$work/serve.err" | head -n "$errlines0" | errs | sed 's/^/  before:   /'
  grep 'scrape failed' "$work/serve.err" | tail -n "+$((errlines0 + 1))" | errs | sed 's/^/  measured: /'
fi
printf 'nodes per cycle:      %s at least (of %d)\n' "$min_nodes" "$nodes"
grep -E 'VmHWM|VmRSS' "/proc/$pid/status" | sed 's/^/kubemon /'
read -r anon_peak file_peak <"$work/rsspeak" || true
printf 'kubemon peak RssAnon: %s kB (heap and other anonymous memory, sampled each second)\n' "${anon_peak:-?}"
printf 'kubemon peak RssFile: %s kB (the binary, memory-mapped blocks and chunks)\n' "${file_peak:-?}"
printf 'TSDB compactions:     %.0f since start (%.0f failed), %.1f s in all; head truncations %.0f, WAL checkpoints %.0f\n' \
  "$(metric prometheus_tsdb_compactions_total)" "$(metric prometheus_tsdb_compactions_failed_total)" \
  "$(metric prometheus_tsdb_compaction_duration_seconds_sum)" "$(metric prometheus_tsdb_head_truncations_total)" \
  "$(metric prometheus_tsdb_checkpoint_creations_total)"
if [ -n "${HEAPPROFILE:-}" ]; then
  curl -s -o "$HEAPPROFILE" "$base/debug/pprof/heap"
fi
