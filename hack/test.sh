#!/usr/bin/env bash
# The whole test suite: installs what it needs (Debian packages, Go modules,
# the Kubernetes binaries, built once per version into a cache outside the
# repository), then formatting, vet, golangci-lint (hack/lint.sh), the series
# contract's rename check (hack/contract-rename.sh), and every test with the race detector:
# unit, fixture and fuzz-seed tests, and the end-to-end tests that run the
# kubemon binary against the simulator and against a real cluster
# (hack/cluster; as root).
set -euo pipefail
cd "$(dirname "$0")/.."

hack/deps.sh
echo "== Kubernetes binaries (cached by version; the first build takes 20-30 minutes)"
k8s_dir=$(hack/cluster/build.sh)
echo "== helm (cached by version; the first build takes about 10 minutes)"
helm_dir=$(hack/helm.sh)
echo "== InfluxDB 1.8.10 for the 2.x write API tests (cached by version; the first build takes about 4 minutes)"
export KUBEMON_INFLUXD18="$(hack/influxdb.sh)/influxd"
export PATH="$PATH:$k8s_dir:$helm_dir"
echo "== peers for the side-by-side and distributed-store tests: metrics-server, kube-state-metrics, Thanos (cached by version; the first builds take about 8, 6 and 8 minutes)"
hack/peers/build.sh metrics-server kube-state-metrics thanos

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" $unformatted >&2
  exit 1
fi
echo "== go vet"
go vet ./...
echo "== golangci-lint (.golangci.yml: staticcheck, errcheck, depguard's dependency directions, ...)"
hack/lint.sh
# gotestsum runs go test and ends with a summary naming every skipped test
# (with its reason) and every failure.
gotestsum=("$(go env GOPATH)/bin/gotestsum" --format pkgname-and-test-fails --format-hide-empty-pkg)
echo "== series contract: a renamed label key and series name reach every API and golden file"
hack/contract-rename.sh
echo "== go test -race (unit and package tests)"
"${gotestsum[@]}" -- -race -count=1 -timeout 30m $(go list ./... | grep -v /test/e2e)
# The end-to-end tests run alone: they start real servers and a cluster,
# which compete badly with the race-instrumented package tests for 2 cores.
echo "== go test -race ./test/e2e (simulator spine, real cluster)"
"${gotestsum[@]}" -- -race -count=1 -timeout 60m ./test/e2e/
