// Command gen writes what derives from the metric table: the metric list in
// a Markdown file's marked block (model.DocBegin ... model.DocEnd) and the
// web UI's series module (seriesjs.Path, under the root of the Go module
// holding the current directory). go generate ./internal/model runs it on
// the README.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/model/gen/seriesjs"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gen FILE.md")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(path string) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, ok := model.ReplaceDoc(string(doc))
	if !ok {
		return fmt.Errorf("%s: no %s ... %s block", path, model.DocBegin, model.DocEnd)
	}
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		return err
	}

	root, err := moduleRoot()
	if err != nil {
		return err
	}
	js, err := seriesjs.Render(filepath.Join(root, "internal", "model"))
	if err != nil {
		return err
	}
	jsPath := filepath.Join(root, filepath.FromSlash(seriesjs.Path))
	if old, err := os.ReadFile(jsPath); err == nil && bytes.Equal(old, js) {
		return nil
	}
	return os.WriteFile(jsPath, js, 0o644)
}

// moduleRoot is the nearest directory at or above the current one with a go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("gen: no go.mod at or above the current directory")
		}
		dir = parent
	}
}
