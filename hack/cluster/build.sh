#!/usr/bin/env bash
# Builds the Kubernetes binaries the cluster harness runs, once per version,
# into a cache outside the repository:
#   $KUBEMON_CACHE/k8s-$K8S_VERSION/{kube-apiserver,kube-controller-manager,kube-scheduler,kubelet[,kubectl]}
#   $KUBEMON_CACHE/etcd-$ETCD_VERSION/etcd
# KUBEMON_CACHE defaults to /var/cache/kubemon (or ~/.cache/kubemon when not root).
# Prints the directory of the Kubernetes binaries.
# Cold: ~160 MB of modules and 10–30 minutes on 2 cores; warm: seconds.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.36.3}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
. "$(cd "$(dirname "$0")/.." && pwd)/lib.sh"
k8s_dir=$KUBEMON_CACHE/k8s-$K8S_VERSION
etcd_dir=$KUBEMON_CACHE/etcd-$ETCD_VERSION
bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
# kubectl too, where the machine has none (callers put $k8s_dir on PATH).
command -v kubectl >/dev/null 2>&1 || bins+=(kubectl)

have_all() {
  for b in "${bins[@]}"; do [ -x "$k8s_dir/$b" ] || return 1; done
  [ -x "$etcd_dir/etcd" ]
}
if have_all; then
  echo "$k8s_dir"
  exit 0
fi

work=$KUBEMON_CACHE/build
mkdir -p "$work/k8s" "$work/etcd" "$k8s_dir" "$etcd_dir"
log() { echo "build.sh: $*" >&2; }

# Kubernetes: its go.mod replaces every staging module with ./staging/...,
# so build from a throwaway module that points them at their published tags.
minor=${K8S_VERSION#v1.}
staging_version=v0.${minor}
(
  cd "$work/k8s"
  [ -f go.mod ] || printf 'module kbuild\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n' "$K8S_VERSION" >go.mod
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  for m in $(awk '/^\tk8s.io\/[^ ]+ v0.0.0$/ {print $1}' "$gomod"); do
    [ "$m" = k8s.io/sample-cli-plugin ] && continue
    go mod edit -replace "$m=$m@$staging_version"
  done
  for b in "${bins[@]}"; do
    [ -x "$k8s_dir/$b" ] && continue
    log "building $b $K8S_VERSION (slow the first time)"
    go get "k8s.io/kubernetes/cmd/$b@$K8S_VERSION" >/dev/null 2>&1 || go get "k8s.io/kubernetes/cmd/$b@$K8S_VERSION"
    ld="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld="$ld -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor%%.*} -X $pkg.gitTreeState=clean"
    done
    CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o "$k8s_dir/$b.tmp" "k8s.io/kubernetes/cmd/$b"
    mv "$k8s_dir/$b.tmp" "$k8s_dir/$b"
  done
)

# etcd: the server's main package is its module root.
if [ ! -x "$etcd_dir/etcd" ]; then
  (
    cd "$work/etcd"
    [ -f go.mod ] || printf 'module ebuild\n\ngo 1.26.0\n' >go.mod
    log "building etcd $ETCD_VERSION"
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1 || go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$etcd_dir/etcd.tmp" go.etcd.io/etcd/server/v3
    mv "$etcd_dir/etcd.tmp" "$etcd_dir/etcd"
  )
fi
echo "$k8s_dir"
