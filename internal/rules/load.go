package rules

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	pmodel "github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// Limits on what a rule file may cost to read.
const (
	// MaxFileBytes is the largest rule file read, in bytes: a bigger one
	// is an error naming it (Prometheus's own rule files are kilobytes).
	MaxFileBytes = 8 << 20
	// MaxFiles is the most rule files all patterns together may match.
	MaxFiles = 1000
	// MinGroupInterval is the shortest evaluation interval a group may
	// set with interval:.
	MinGroupInterval = time.Second
)

// file is one rule file as read: its identifier (the path, or
// DefaultPackFile) and its groups as parsed.
type file struct {
	name   string
	groups *rulefmt.RuleGroups
}

// snapshot is every rule file of one load, in the order given: what the
// rule manager's GroupLoader serves, so that the files checked are exactly
// the files evaluated (a file edited between the check and the load does
// not slip through).
type snapshot struct {
	files []file
}

// names lists the files' identifiers, in order.
func (s *snapshot) names() []string {
	out := make([]string, len(s.files))
	for i, f := range s.files {
		out[i] = f.name
	}
	return out
}

// byName finds a file of the snapshot.
func (s *snapshot) byName(name string) *file {
	for i := range s.files {
		if s.files[i].name == name {
			return &s.files[i]
		}
	}
	return nil
}

// isRuleFile reports whether path has a rule file's extension.
func isRuleFile(path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	return ext == ".yml" || ext == ".yaml"
}

// hasMeta reports whether pattern has glob metacharacters.
func hasMeta(pattern string) bool { return strings.ContainsAny(pattern, `*?[\`) }

// expand resolves patterns to rule files, each once, in the order given
// (a glob's matches sorted). A plain path must exist and name a .yml or
// .yaml file; a glob may match nothing (the files may come later, and are
// picked up when they do), and its matches that are not rule files
// (README.md beside them) are skipped.
func expand(patterns []string) ([]string, []error) {
	var out []string
	var errs []error
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, pat := range patterns {
		if !hasMeta(pat) {
			if !isRuleFile(pat) {
				errs = append(errs, fmt.Errorf("%s: a rule file must end in .yml or .yaml", pat))
				continue
			}
			add(pat)
			continue
		}
		matches, err := filepath.Glob(pat)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule files %q: %w", pat, err))
			continue
		}
		slices.Sort(matches)
		for _, m := range matches {
			if !isRuleFile(m) {
				continue
			}
			if fi, err := os.Stat(m); err == nil && fi.IsDir() {
				continue
			}
			add(m)
		}
	}
	if len(out) > MaxFiles {
		errs = append(errs, fmt.Errorf("rule files %q match %d files, more than the %d allowed", patterns, len(out), MaxFiles))
		out = out[:MaxFiles]
	}
	return out, errs
}

// readFile reads a rule file of at most MaxFileBytes.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such rule file", path)
		}
		return nil, err // *PathError names the file
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > MaxFileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes, the most a rule file may hold", path, MaxFileBytes)
	}
	return b, nil
}

// parseFile parses and validates one rule file's content, every error
// prefixed with the file's name: rulefmt's own errors start with the line
// and column ("rules.yml:12:9: group \"pods\", rule 2, \"PodDown\": ..."),
// the YAML decoder's name the line ("rules.yml: yaml: line 4: ...").
func parseFile(name string, content []byte, p parser.Parser, log *slog.Logger) (*rulefmt.RuleGroups, []error) {
	rgs, errs := rulefmt.Parse(content, false, pmodel.UTF8Validation, p, log)
	if len(errs) == 0 {
		for _, g := range rgs.Groups {
			if g.Interval != 0 && time.Duration(g.Interval) < MinGroupInterval {
				errs = append(errs, fmt.Errorf("group %q: interval %s: want at least %s", g.Name, g.Interval, pmodel.Duration(MinGroupInterval)))
			}
		}
	}
	// rulefmt decodes the file twice (the rules, then their YAML nodes for
	// the lines): a YAML error comes twice.
	out := errs[:0]
	seen := map[string]bool{}
	for _, err := range errs {
		msg := err.Error()
		if seen[msg] {
			continue
		}
		seen[msg] = true
		sep := ":"
		if !startsWithLine(msg) {
			sep = ": "
		}
		out = append(out, fmt.Errorf("%s%s%w", name, sep, err))
	}
	return rgs, out
}

// startsWithLine reports whether msg begins "<line>:<column>:".
func startsWithLine(msg string) bool {
	digits := 0
	colons := 0
	for _, c := range msg {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == ':' && digits > 0:
			colons++
			digits = 0
			if colons == 2 {
				return true
			}
		default:
			return false
		}
	}
	return false
}

// builtinFile is a rule file kubemon makes itself (the default pack, the
// roll-up rules): its name in /api/v1/rules and its content.
type builtinFile struct {
	name    string
	content []byte
}

// load reads and checks the builtin files and every rule file the
// patterns match: the snapshot, or every problem found.
func load(patterns []string, builtin []builtinFile, p parser.Parser, log *slog.Logger) (*snapshot, []error) {
	paths, errs := expand(patterns)
	s := &snapshot{}
	addFile := func(name string, content []byte) {
		rgs, perrs := parseFile(name, content, p, log)
		errs = append(errs, perrs...)
		s.files = append(s.files, file{name: name, groups: rgs})
	}
	for _, f := range builtin {
		addFile(f.name, f.content)
	}
	for _, path := range paths {
		b, err := readFile(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		addFile(path, b)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

// signature identifies the rule files the patterns match and their
// content, without parsing them: the poller compares it with the last
// load's to see a change.
// Files it cannot read make a signature of their own (their errors), so
// that a file going bad is a change too.
func signature(patterns []string, builtin []builtinFile) string {
	paths, errs := expand(patterns)
	h := sha256.New()
	for _, f := range builtin {
		fmt.Fprintf(h, "%s\x00%d\x00", f.name, len(f.content))
		h.Write(f.content)
	}
	for _, path := range paths {
		b, err := readFile(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(b))
		h.Write(b)
	}
	if len(errs) > 0 {
		for _, err := range errs {
			fmt.Fprintf(h, "error\x00%s\x00", err)
		}
		return fmt.Sprintf("errors:%x", h.Sum(nil))
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}
