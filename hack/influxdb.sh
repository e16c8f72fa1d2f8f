#!/usr/bin/env bash
# Builds InfluxDB 1.8's influxd from its Go module, once per version, into a
# cache outside the repository, as hack/helm.sh does for helm:
#   $KUBEMON_CACHE/influxdb-$INFLUXDB_VERSION/influxd
# KUBEMON_CACHE defaults to /var/cache/kubemon (or ~/.cache/kubemon when not root).
# 1.8 serves InfluxDB 2.x's write API (/api/v2/write), which Debian's
# influxdb (1.6.7, installed by hack/deps.sh) lacks; the InfluxDB sink's tests
# of that API use this binary:
#   KUBEMON_INFLUXD18=$(hack/influxdb.sh)/influxd go test ./internal/sink/influxdb
# Prints the directory holding influxd on stdout; logs go to stderr.
set -euo pipefail

INFLUXDB_VERSION=${INFLUXDB_VERSION:-v1.8.10}
if [ -z "${KUBEMON_CACHE:-}" ]; then
  if [ "$(id -u)" -eq 0 ]; then KUBEMON_CACHE=/var/cache/kubemon; else KUBEMON_CACHE=$HOME/.cache/kubemon; fi
fi
out_dir=$KUBEMON_CACHE/influxdb-$INFLUXDB_VERSION
if [ -x "$out_dir/influxd" ]; then
  echo "$out_dir"
  exit 0
fi

work=$KUBEMON_CACHE/build/influxdb-$INFLUXDB_VERSION
mkdir -p "$work" "$out_dir"
log() { echo "influxdb.sh: $*" >&2; }

(
  cd "$work"
  [ -f go.mod ] || go mod init ibuild >/dev/null 2>&1
  log "building influxd $INFLUXDB_VERSION (slow the first time)"
  go get "github.com/influxdata/influxdb/cmd/influxd@$INFLUXDB_VERSION" >/dev/null 2>&1 ||
    go get "github.com/influxdata/influxdb/cmd/influxd@$INFLUXDB_VERSION"
  v=${INFLUXDB_VERSION#v}
  ld="-s -w -X main.version=$v -X main.branch=${v%.*} -X main.commit=$INFLUXDB_VERSION"
  CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o "$out_dir/influxd.tmp" github.com/influxdata/influxdb/cmd/influxd
  mv "$out_dir/influxd.tmp" "$out_dir/influxd"
)
echo "$out_dir"
