#!/usr/bin/env bash
# Builds the peers kubemon is compared with (issue 13), once per version,
# into a cache outside the repository, and prints each binary's path, one a
# line, in the order asked:
#   hack/peers/build.sh [PEER...]     # default: metrics-server
#   $KUBEMON_CACHE/metrics-server-$VERSION/metrics-server
#   $KUBEMON_CACHE/kube-state-metrics-$VERSION/kube-state-metrics
#   $KUBEMON_CACHE/thanos-$VERSION/thanos
# PEER: metrics-server, kube-state-metrics, thanos (the distributed store of
# the Replica and Shard tests, issue 14).
# KUBEMON_CACHE defaults to /var/cache/kubemon (or ~/.cache/kubemon when not root).
#
# Each peer is built from its own Go module under hack/peers/<peer>/ (a
# go.mod with a `tool` directive, and its go.sum): the peers pin older
# Kubernetes libraries than kubemon's go.mod, so they never enter it. The
# version is the one that go.mod requires; to move it:
#   cd hack/peers/metrics-server && go get -tool sigs.k8s.io/metrics-server/cmd/metrics-server@vX.Y.Z
#   cd hack/peers/kube-state-metrics && go get -tool k8s.io/kube-state-metrics/v2@vX.Y.Z
#   cd hack/peers/thanos && GOTOOLCHAIN=go1.26.10 go get -tool github.com/thanos-io/thanos/cmd/thanos@vX.Y.Z
# (a version whose go.sum lines the checksum database serves: never
# GONOSUMDB). Cold, on 2 cores: metrics-server ~100 MB of modules from the
# Go module proxy and 2-4 minutes, kube-state-metrics ~40 MB and about 6
# minutes (353 s), Thanos ~2 GB and about 8 minutes (it needs Go 1.26.10,
# which the go command fetches from the module proxy); warm: instant. Logs (with the build's time) go to stderr.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
log() { echo "peers/build.sh: $*" >&2; }

# module_version DIR MODULE: the version of MODULE that DIR's go.mod requires.
module_version() {
  (cd "$1" && go list -mod=readonly -m -f '{{.Version}}' "$2")
}

# build_tool NAME DIR PACKAGE VERSION LDFLAGS [BINARY]: builds PACKAGE in
# module DIR into $KUBEMON_CACHE/NAME-VERSION/BINARY (default: PACKAGE's
# last element) unless it is there, and prints that path.
build_tool() {
  local name=$1 dir=$2 pkg=$3 version=$4 ldflags=$5
  local out=$KUBEMON_CACHE/$name-$version bin
  bin=$out/${6:-${pkg##*/}}
  if [ -x "$bin" ]; then
    echo "$bin"
    return 0
  fi
  mkdir -p "$out"
  log "building $name $version into $out (the first time: modules from the proxy, a few minutes)"
  local start=$SECONDS
  # -mod=readonly: go.mod and go.sum as committed, whatever GOFLAGS says.
  (cd "$dir" && CGO_ENABLED=0 go build -mod=readonly -trimpath -tags "${BUILD_TAGS:-}" -ldflags "$ldflags" -o "$bin.tmp" "$pkg") >&2
  mv "$bin.tmp" "$bin"
  log "built $name $version in $((SECONDS - start)) s"
  echo "$bin"
}

# metrics-server: sigs.k8s.io/metrics-server, stamped as its Makefile does
# (its /version and --version read client-go's version package).
build_metrics_server() {
  local dir=$here/metrics-server version
  version=$(module_version "$dir" sigs.k8s.io/metrics-server)
  build_tool metrics-server "$dir" sigs.k8s.io/metrics-server/cmd/metrics-server "$version" \
    "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$version -X k8s.io/client-go/pkg/version.gitTreeState=clean"
}

# kube-state-metrics: k8s.io/kube-state-metrics/v2 (its main package is the
# module's root, hence the binary's name), stamped as its Makefile does
# (prometheus/common's version package: its `version` command and the
# kube_state_metrics_build_info metric).
build_kube_state_metrics() {
  local dir=$here/kube-state-metrics version
  version=$(module_version "$dir" k8s.io/kube-state-metrics/v2)
  build_tool kube-state-metrics "$dir" k8s.io/kube-state-metrics/v2 "$version" \
    "-s -w -X github.com/prometheus/common/version.Version=$version" \
    kube-state-metrics
}

# thanos: github.com/thanos-io/thanos/cmd/thanos with the tags its Makefile
# builds with (netgo, slicelabels: its labels are the slice kind), on the Go
# toolchain its go.mod asks for (the go command fetches it from the module
# proxy; GOTOOLCHAIN may be "local" in the environment), stamped as its
# Makefile does.
build_thanos() {
  local dir=$here/thanos version
  export GOTOOLCHAIN=go1.26.10
  version=$(module_version "$dir" github.com/thanos-io/thanos)
  BUILD_TAGS=netgo,slicelabels build_tool thanos "$dir" github.com/thanos-io/thanos/cmd/thanos "$version" \
    "-s -w -X github.com/prometheus/common/version.Version=${version#v}"
  unset GOTOOLCHAIN
}

# A new peer: a module in hack/peers/<peer>/ and a build_<peer> function
# here (dashes as underscores), e.g. build_kube_state_metrics above.
[ $# -gt 0 ] || set -- metrics-server
for peer in "$@"; do
  fn=build_${peer//-/_}
  if ! declare -F "$fn" >/dev/null; then
    log "unknown peer $peer"
    exit 2
  fi
  "$fn"
done
