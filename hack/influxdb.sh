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
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

influxd_ldflags() {
  local v=${INFLUXDB_VERSION#v}
  echo "-X main.version=$v -X main.branch=${v%.*} -X main.commit=$INFLUXDB_VERSION"
}
cached_go_build influxdb "$INFLUXDB_VERSION" github.com/influxdata/influxdb/cmd/influxd influxd_ldflags
