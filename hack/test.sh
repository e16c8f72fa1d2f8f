#!/usr/bin/env bash
# The whole test suite: installs what it needs, then formatting, vet, and
# every test with the race detector (unit, fixture, fuzz seeds and the
# end-to-end spine tests that run the kubemon binary).
set -euo pipefail
cd "$(dirname "$0")/.."

hack/deps.sh

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" $unformatted >&2
  exit 1
fi
echo "== go vet"
go vet ./...
echo "== go test -race"
go test -race -count=1 -timeout 30m ./...
