#!/usr/bin/env bash
# Stops what hack/cluster/up.sh DIR started, by PID, and cleans up the node's
# network namespace and cgroups. DIR itself is left for its logs.
set -uo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
DIR=$(realpath -m "$1")
NS=${KUBEMON_NODE_NS:-kmnode1}

stop() {
  local f=$DIR/pids/$1.pid pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  fi
  rm -f "$f"
}

stop kubemon
# The node's PID namespace ends with its first process (the kubelet): the
# kernel then kills containerd, its shims and the containers.
node_pid=$(cat "$DIR/pids/node.pid" 2>/dev/null || true)
if [ -n "$node_pid" ]; then
  for child in $(pgrep -P "$node_pid" 2>/dev/null); do kill -9 "$child" 2>/dev/null; done
fi
stop node
for c in kube-scheduler kube-controller-manager kube-apiserver etcd; do stop "$c"; done
sleep 0.5

# The node's network and cgroups are shared by name: leave them to the
# cluster up.sh says holds them, when that is another one.
OWNER=/run/kubemon-cluster-$NS
if other=$(cat "$OWNER" 2>/dev/null) && [ "$other" != "$DIR" ] \
  && pid=$(cat "$other/pids/kube-apiserver.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; then
  echo "down.sh: node $NS belongs to the running cluster $other: its network and cgroups are left alone" >&2
  exit 0
fi
rm -f "$OWNER"

# Cgroups the node created under its cgroupRoot, deepest first.
for h in /sys/fs/cgroup/*/; do
  [ -d "$h$NS" ] && find "$h$NS" -depth -type d -exec rmdir {} \; 2>/dev/null
done
# containerd 1.6 keeps shim sockets in /run/containerd whatever its state
# directory; remove them when no other containerd runs on the machine.
pgrep -x containerd >/dev/null || rm -rf /run/containerd
ip netns list 2>/dev/null | grep -qw "$NS" && ip netns delete "$NS"
# Pod network namespaces containerd made (CNI names them cni-*) outlive the
# node when its containers are killed rather than torn down: remove those
# no longer mounted.
for f in /run/netns/cni-*; do
  [ -e "$f" ] || continue
  mountpoint -q "$f" || rm -f "$f"
done
ip link delete "${NS}h" 2>/dev/null
rmdir /var/lib/kubelet /var/log/containers 2>/dev/null
exit 0
