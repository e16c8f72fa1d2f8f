#!/usr/bin/env bash
# Builds helm (v3) from its Go module, once per version, into a cache outside
# the repository, as hack/cluster/build.sh does for Kubernetes:
#   $KUBEMON_CACHE/helm-$HELM_VERSION/helm
# KUBEMON_CACHE defaults to /var/cache/kubemon (or ~/.cache/kubemon when not root).
# Prints the directory holding helm, for PATH:
#   PATH=$(hack/helm.sh):$PATH go test ./test/deploy
# Cold: ~100 MB of modules and 5–15 minutes on 2 cores; warm: instant.
set -euo pipefail

HELM_VERSION=${HELM_VERSION:-v3.22.0}
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

# As helm's Makefile does: the Kubernetes version that `helm template` and
# `helm lint` assume without a cluster follows the client-go helm is built
# with (v0.37.x -> 1.37) instead of the compiled-in 1.20.
helm_ldflags() {
  local k8s_minor ld pkg
  k8s_minor=$(go list -m -f '{{.Version}}' k8s.io/client-go | cut -d. -f2)
  ld="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ld="$ld -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
  done
  echo "$ld"
}
cached_go_build helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm helm_ldflags
