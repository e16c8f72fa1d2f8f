// Package version names the kubemon build: the version and VCS revision
// stamped at link time, and the Go toolchain that compiled it.
//
// Release builds set both strings with the linker:
//
//	go build -ldflags "-X github.com/kubemon/kubemon/internal/version.Version=$(git describe --tags --always --dirty) \
//	  -X github.com/kubemon/kubemon/internal/version.Revision=$(git rev-parse HEAD)" ./cmd/kubemon
//
// hack/image.sh and the Dockerfile do so. A plain `go build` in a git
// checkout still gets a Revision, from the VCS stamp the go command embeds
// in the binary (see runtime/debug.ReadBuildInfo).
package version

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Version is the build's version, e.g. "v0.1.0-3-gabc1234" (git describe);
// "dev" unless set at link time with
// -ldflags "-X github.com/kubemon/kubemon/internal/version.Version=...".
var Version = "dev"

// Revision is the full VCS commit the build was made from. Set at link time
// with -ldflags "-X github.com/kubemon/kubemon/internal/version.Revision=...";
// when not set, it is the go command's vcs.revision stamp, with "-dirty"
// appended when the working tree had local modifications (vcs.modified),
// or "" when the binary carries no stamp (go test, go run, -buildvcs=false).
var Revision = ""

// GoVersion is the Go toolchain that compiled the binary, e.g. "go1.26.8".
var GoVersion = runtime.Version()

func init() {
	if Revision == "" {
		Revision = revisionFrom(debug.ReadBuildInfo())
	}
}

// revisionFrom returns the VCS revision recorded in a binary's build info,
// with "-dirty" appended when the tree was modified; "" without one.
func revisionFrom(info *debug.BuildInfo, ok bool) string {
	if !ok || info == nil {
		return ""
	}
	var rev string
	var modified bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev != "" && modified {
		rev += "-dirty"
	}
	return rev
}

// String describes the build in one line, e.g.
// "kubemon v0.1.0-3-gabc1234 (revision abc1234…, go1.26.8)"; the revision
// is printed in full and left out when unknown.
func String() string {
	return format(Version, Revision, GoVersion)
}

func format(version, revision, goVersion string) string {
	var b strings.Builder
	b.WriteString("kubemon ")
	if version == "" {
		version = "dev"
	}
	b.WriteString(version)
	b.WriteString(" (")
	if revision != "" {
		b.WriteString("revision ")
		b.WriteString(revision)
		b.WriteString(", ")
	}
	b.WriteString(goVersion)
	b.WriteString(")")
	return b.String()
}
