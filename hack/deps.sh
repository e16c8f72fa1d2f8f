#!/usr/bin/env bash
# Installs what kubemon's build and tests need on a fresh Debian machine:
# Debian packages (apt-get update first) and the Go modules. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

need_go="1.26"
if ! command -v go >/dev/null 2>&1; then
  echo "deps: Go $need_go or newer is required (https://go.dev/dl/); none found on PATH" >&2
  exit 1
fi
have=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$need_go" "$have" | sort -V | head -n1)" != "$need_go" ]; then
  echo "deps: Go $need_go or newer is required, found $have" >&2
  exit 1
fi

pkgs=(ca-certificates curl procps bc iproute2 util-linux mount containerd runc containernetworking-plugins iptables conntrack git
  influxdb prometheus prometheus-alertmanager chromium fonts-dejavu-core fonts-liberation)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if command -v apt-get >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  if ((${#missing[@]})); then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

go mod download
# The test runner: go test with a summary that names every skipped and
# failed test (installed outside the module; its own dependencies).
GOTESTSUM_VERSION=v1.13.0
if ! "$(go env GOPATH)/bin/gotestsum" --version 2>/dev/null | grep -q "${GOTESTSUM_VERSION#v}"; then
  go install "gotest.tools/gotestsum@$GOTESTSUM_VERSION"
fi
