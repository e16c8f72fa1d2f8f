#!/usr/bin/env bash
# The peer benchmark (issue 13): kubemon beside metrics-server and
# Prometheus + kube-state-metrics on the same simulated cluster.
#
#   hack/bench/peers.sh NODES PODS_PER_NODE
#
# One simulated cluster of NODES × PODS_PER_NODE (internal/sim: kubelets over
# TLS with a CA this run makes, token authentication) is loaded into a real
# etcd + kube-apiserver (v1.36.3, hack/cluster/build.sh) on loopback; then,
# one after another, kubemon serve --kubeconfig (Kubernetes discovery, its
# defaults), metrics-server v0.8.0 (hack/peers/build.sh) and Debian's
# Prometheus (Kubernetes service discovery, role node; every kubelet's
# /metrics/cadvisor and /metrics/resource as kube-prometheus scrapes them)
# with kube-state-metrics v2.13.0 (hack/peers/build.sh; its default
# resources, scraped by that Prometheus; the two measured as one peer), each
# measured by its PIDs over DURATION after a warm-up. The last lines are one per peer:
#   kubemon/metrics-server cpu=… rss=… disk=-
#   kubemon/prometheus cpu=… rss=… disk=…
# Environment: INTERVAL (15s), DURATION per peer (1h), WARMUP (3 intervals),
# PEERS (kubemon,metrics-server,prometheus), METRICS_SERVER and KSM (the
# peers' binaries; default: hack/peers/build.sh metrics-server,
# kube-state-metrics, which fails the run when it cannot build them),
# PROMETHEUS (/usr/bin/prometheus), KUBEMON_ARGS (more flags for kubemon
# serve, separated by spaces; default none, its defaults),
# BENCH_LOCK (/tmp/bench.lock: runs wait for each other), KEEP=1 keeps the
# work directory. See docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
usage="usage: hack/bench/peers.sh NODES PODS_PER_NODE"
nodes=${1:?$usage}
pods=${2:?$usage}
. hack/lib.sh

k8s_dir=$(hack/cluster/build.sh)
etcd=$KUBEMON_CACHE/etcd-${ETCD_VERSION:-v3.6.16}/etcd

# metrics-server and kube-state-metrics from hack/peers/build.sh (built
# once per version; set -e: a failed build ends the run, no substitute).
ms=${METRICS_SERVER:-$(nice -n 19 hack/peers/build.sh metrics-server)}
[ -x "$ms" ] || { echo "peers.sh: no metrics-server at $ms (hack/peers/build.sh metrics-server)" >&2; exit 1; }
peers=${PEERS:-kubemon,metrics-server,prometheus}
ksm=${KSM:-}
if [[ ,$peers, == *,prometheus,* ]]; then
  [ -n "$ksm" ] || ksm=$(nice -n 19 hack/peers/build.sh kube-state-metrics)
  [ -x "$ksm" ] || { echo "peers.sh: no kube-state-metrics at $ksm (hack/peers/build.sh kube-state-metrics)" >&2; exit 1; }
fi
prometheus=${PROMETHEUS:-/usr/bin/prometheus}
if [ ! -x "$prometheus" ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >&2
fi

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
nice -n 19 go build -o "$bin/kubemon" ./cmd/kubemon
nice -n 19 go build -o "$bin/pki" ./hack/cluster/pki
nice -n 19 go build -o "$bin/peers" ./hack/bench/peers

args=(run -nodes "$nodes" -pods "$pods" -interval "${INTERVAL:-15s}" -duration "${DURATION:-1h}"
  -kubemon "$bin/kubemon" -pki "$bin/pki" -k8s-dir "$k8s_dir" -etcd "$etcd"
  -metrics-server "$ms" -ksm "$ksm" -prometheus "$prometheus" -peers "$peers")
[ -z "${WARMUP:-}" ] || args+=(-warmup "$WARMUP")
[ -z "${KUBEMON_ARGS:-}" ] || args+=(-kubemon-args "$KUBEMON_ARGS")
[ "${KEEP:-0}" = 0 ] || args+=(-keep)
echo "peers.sh: waiting for ${BENCH_LOCK:-/tmp/bench.lock}" >&2
flock "${BENCH_LOCK:-/tmp/bench.lock}" "$bin/peers" "${args[@]}"
