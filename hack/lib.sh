# Shared by the hack/ scripts that build tools once per version into a cache
# outside the repository. Source it; it sets KUBEMON_CACHE when unset:
# /var/cache/kubemon as root, ~/.cache/kubemon otherwise.
if [ -z "${KUBEMON_CACHE:-}" ]; then
  if [ "$(id -u)" -eq 0 ]; then KUBEMON_CACHE=/var/cache/kubemon; else KUBEMON_CACHE=$HOME/.cache/kubemon; fi
fi

# cached_go_build NAME VERSION PACKAGE [LDFLAGS_FUNC]
# Builds the Go command PACKAGE at module version VERSION, once, into
# $KUBEMON_CACHE/NAME-VERSION/<PACKAGE's last element>, in a scratch module
# under $KUBEMON_CACHE/build, and prints that directory. LDFLAGS_FUNC, when
# given, is a function run in the scratch module (after `go get`) that
# prints extra -ldflags. Logs go to stderr.
cached_go_build() {
  local name=$1 version=$2 pkg=$3 ldfunc=${4:-}
  local bin=${pkg##*/} out=$KUBEMON_CACHE/$name-$version work=$KUBEMON_CACHE/build/$name-$version
  if [ -x "$out/$bin" ]; then
    echo "$out"
    return 0
  fi
  mkdir -p "$work" "$out"
  (
    cd "$work"
    [ -f go.mod ] || go mod init "build-$name" >/dev/null 2>&1
    echo "$name: building $bin $version (slow the first time)" >&2
    go get "$pkg@$version" >/dev/null 2>&1 || go get "$pkg@$version" >&2
    local ld="-s -w"
    [ -z "$ldfunc" ] || ld="$ld $("$ldfunc")"
    CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o "$out/$bin.tmp" "$pkg" >&2
    mv "$out/$bin.tmp" "$out/$bin"
  )
  echo "$out"
}
