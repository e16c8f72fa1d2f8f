#!/usr/bin/env bash
# Lints the module with golangci-lint and .golangci.yml (staticcheck, errcheck,
# depguard's dependency directions, no variable shadowing a package, …), then
# proves that the depguard rules bite: in a throwaway copy of the tree it adds
# imports that break docs/architecture.md's directions and checks that each
# is reported.
#
# golangci-lint is built once per version into
#   $KUBEMON_CACHE/golangci-lint-$GOLANGCI_LINT_VERSION/golangci-lint
# KUBEMON_CACHE defaults to /var/cache/kubemon (or ~/.cache/kubemon when not root).
set -euo pipefail
cd "$(dirname "$0")/.."

GOLANGCI_LINT_VERSION=${GOLANGCI_LINT_VERSION:-v2.15.0}
. hack/lib.sh
bin_dir=$KUBEMON_CACHE/golangci-lint-$GOLANGCI_LINT_VERSION
lint=$bin_dir/golangci-lint
if ! "$lint" version 2>/dev/null | grep -q "${GOLANGCI_LINT_VERSION#v}"; then
  echo "lint: building golangci-lint $GOLANGCI_LINT_VERSION into $bin_dir (about 2 minutes)" >&2
  mkdir -p "$bin_dir"
  GOBIN=$bin_dir go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_LINT_VERSION"
fi

"$lint" run ./...

# Self-test of the dependency rules: each probe is a file that imports what
# its package must not; every one must be reported by depguard.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$tmp" 2>/dev/null || true
probe() { # package-dir forbidden-import
  local pkg=$1 imp=$2 name
  name=$(basename "$pkg")
  cat >"$tmp/$pkg/zz_depguard_probe.go" <<EOF
package $name

import _ "github.com/kubemon/kubemon/$imp"
EOF
}
probes=( # no probe may close an import cycle: type checking would stop
  "internal/scrape internal/discovery"
  "internal/podmeta internal/version"
  "internal/model internal/version"
  "internal/pipeline internal/store"
  "internal/store internal/scrape"
  "internal/api/promapi internal/store"
  "internal/api/heapster internal/discovery"
  "internal/sim internal/model"
  "internal/app internal/sim"
  "internal/config internal/testutil/golden"
  "internal/sink internal/store"
  "internal/ui internal/model"
  "internal/rules internal/store"
  "internal/notify internal/rules"
  "internal/events internal/model"
  "internal/api/kubeauth internal/events"
  "internal/sink/influxdb internal/events"
  "internal/querybackend internal/model"
  "internal/shard internal/discovery"
  "internal/replica internal/model"
  "internal/frontdoor internal/model"
  "internal/jsonscan internal/model"
)
pkgs=()
for p in "${probes[@]}"; do
  set -- $p
  probe "$1" "$2"
  pkgs+=("./$1")
done
out=$(cd "$tmp" && "$lint" run --enable-only depguard --output.text.print-issued-lines=false "${pkgs[@]}" 2>&1 || true)
missed=0
for p in "${probes[@]}"; do
  set -- $p
  if ! grep -q "^$1/zz_depguard_probe.go:.*import 'github.com/kubemon/kubemon/$2' is not allowed" <<<"$out"; then
    echo "lint: depguard did not refuse $1 importing $2" >&2
    missed=1
  fi
done
if [ "$missed" -ne 0 ]; then
  echo "$out" >&2
  exit 1
fi
echo "lint: ok; depguard refused all ${#probes[@]} forbidden imports of the self-test"
