#!/usr/bin/env bash
# Builds kubemon's container image without a Docker daemon: a static,
# version-stamped binary at /kubemon, run as 65534:65534 (nobody), with /tmp,
# written as an OCI image layout tar by hack/cluster/ociimage.
#
#   hack/image.sh [OUT.tar]     # default: _output/kubemon-image.tar in the repository
#   IMAGE=registry.example.com/kubemon:v0.1.0 hack/image.sh
#
# Prints the tar's path on stdout; logs go to stderr. Runs from any
# directory; a relative OUT is relative to the current directory.
#
# Environment:
#   IMAGE    the image name recorded in the tar (default localhost/kubemon:dev)
#   GOARCH   the binary's and the image's architecture (default: the Go toolchain's)
#   SOURCE   the org.opencontainers.image.source label (default https://github.com/kubemon/kubemon)
#
# The version is `git describe --tags --always --dirty` and the revision
# `git rev-parse HEAD`; outside a git checkout (or without git) they are
# "dev" and empty. `kubemon version` prints both.
#
# Push it to your own registry, without Docker:
#   skopeo copy oci-archive:_output/kubemon-image.tar docker://REGISTRY/kubemon:TAG
#   crane push _output/kubemon-image.tar REGISTRY/kubemon:TAG
#     (crane reads OCI layout tars since v0.20; or untar it and `crane push DIR ...`)
# Import it into a node's containerd (the name is $IMAGE):
#   ctr -n k8s.io images import _output/kubemon-image.tar
# then use it with `imagePullPolicy: IfNotPresent` (or Never).
# With Docker or BuildKit, the Dockerfile at the root builds the same image.
set -euo pipefail
log() { echo "image.sh: $*" >&2; }
[ $# -le 1 ] || { echo "usage: $0 [OUT.tar]" >&2; exit 2; }

repo=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$repo/_output/kubemon-image.tar}")
image=${IMAGE:-localhost/kubemon:dev}
source_url=${SOURCE:-https://github.com/kubemon/kubemon}
pkg=github.com/kubemon/kubemon/internal/version

version=dev revision="" buildvcs=auto
if command -v git >/dev/null && git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  version=$(git -C "$repo" describe --tags --always --dirty)
  revision=$(git -C "$repo" rev-parse HEAD)
else
  log "not a git checkout (or no git): version dev, no revision"
  buildvcs=false # a .git without git would fail the go command's VCS stamping
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; rm -f "$out.tmp.$$"' EXIT
cd "$repo"
arch=${GOARCH:-$(go env GOARCH)}
log "building kubemon $version (revision ${revision:-unknown}, linux/$arch)"
CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -buildvcs=$buildvcs \
  -ldflags "-s -w -X $pkg.Version=$version -X $pkg.Revision=$revision" \
  -o "$tmp/kubemon" ./cmd/kubemon
env -u GOOS -u GOARCH go build -o "$tmp/ociimage" ./hack/cluster/ociimage

labels=(-label "org.opencontainers.image.title=kubemon"
  -label "org.opencontainers.image.version=$version"
  -label "org.opencontainers.image.source=$source_url")
[ -z "$revision" ] || labels+=(-label "org.opencontainers.image.revision=$revision")
mkdir -p "$(dirname "$out")"
"$tmp/ociimage" -binary "$tmp/kubemon" -name "$image" -out "$out.tmp.$$" \
  -path /kubemon -cmd serve -user 65534:65534 -arch "$arch" "${labels[@]}"
mv "$out.tmp.$$" "$out"
log "wrote $image to $out"
echo "$out"
