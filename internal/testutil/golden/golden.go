// Package golden compares test output with files in a package's testdata
// directory, or rewrites them with `go test -update`, as Prometheus's and
// gotest.tools' golden tests do. Only tests import it.
//
// The environment variable KUBEMON_UPDATE_GOLDEN=1 acts as -update. It is
// the way to rewrite the golden files of every package in one command,
//
//	KUBEMON_UPDATE_GOLDEN=1 go test ./...
//
// since `go test ./... -update` fails in the packages that do not import
// this one (they do not define the flag).
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// UpdateEnv is the environment variable that, set to 1, acts as -update.
const UpdateEnv = "KUBEMON_UPDATE_GOLDEN"

var update = flag.Bool("update", false, "rewrite the golden files in testdata instead of comparing with them (or set "+UpdateEnv+"=1)")

// Updating reports whether golden files are rewritten instead of compared:
// -update was given or KUBEMON_UPDATE_GOLDEN is 1.
func Updating() bool { return *update || os.Getenv(UpdateEnv) == "1" }

// Check compares got with testdata/name, or writes it there with -update
// (or KUBEMON_UPDATE_GOLDEN=1). A difference fails the test naming the
// first line that differs and the commands that rewrite the file (pkg is
// the package's path for it, such as ./internal/model).
func Check(t testing.TB, pkg, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if Updating() {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	rewrite := "go test " + pkg + " -update, or " + UpdateEnv + "=1 go test ./... for every package"
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run %s)", err, rewrite)
	}
	if bytes.Equal(got, want) {
		return
	}
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Fatalf("%s differs at line %d:\n got: %s\nwant: %s\n(if the change is meant, run %s)", path, i+1, gl, wl, rewrite)
		}
	}
}
