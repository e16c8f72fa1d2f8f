// Command gen writes the metric table into a Markdown file's marked block
// (model.DocBegin ... model.DocEnd): go generate ./internal/model updates
// the README's metric list.
package main

import (
	"fmt"
	"os"

	"github.com/kubemon/kubemon/internal/model"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gen FILE.md")
		os.Exit(2)
	}
	path := os.Args[1]
	doc, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out, ok := model.ReplaceDoc(string(doc))
	if !ok {
		fmt.Fprintf(os.Stderr, "%s: no %s ... %s block\n", path, model.DocBegin, model.DocEnd)
		os.Exit(1)
	}
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
