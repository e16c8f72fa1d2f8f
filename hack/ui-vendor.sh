#!/usr/bin/env bash
# Vendors the web UI's front-end packages into internal/ui/static/vendor/.
#
# web/package.json pins each package exactly and web/package-lock.json
# records its integrity hash; `npm ci` installs exactly that (no install
# scripts run), and the files the UI loads are copied next to its own, so
# `go build` alone embeds them (no CDN, no build step, nothing fetched at run
# time). Idempotent: running it again rewrites the same files.
#
# To update a package: change its version in web/package.json, run
# `(cd web && npm install --ignore-scripts --package-lock-only)`, then this
# script, check the UI, and commit web/ and internal/ui/static/vendor/
# together (docs/ui.md lists the versions and licences).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
web=$root/web
vendor=$root/internal/ui/static/vendor

command -v npm >/dev/null || { echo "ui-vendor: npm is not installed (Node.js 18 or newer)" >&2; exit 1; }

(cd "$web" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

mkdir -p "$vendor"
copy() { # copy SRC DEST-NAME: only when the content differs, so mtimes stay put
  local src=$web/node_modules/$1 dst=$vendor/$2
  [ -f "$src" ] || { echo "ui-vendor: $src is missing" >&2; exit 1; }
  if ! cmp -s "$src" "$dst"; then cp "$src" "$dst.tmp" && mv "$dst.tmp" "$dst"; fi
}
copy uplot/dist/uPlot.iife.min.js uPlot.iife.min.js
copy uplot/dist/uPlot.min.css uPlot.min.css
copy uplot/LICENSE uPlot.LICENSE

version=$(cd "$web" && node -p 'require("./node_modules/uplot/package.json").version')
echo "ui-vendor: uPlot $version in ${vendor#"$root"/}"
