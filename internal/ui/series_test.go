package ui

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/model/gen/seriesjs"
)

// seriesModule is the generated module, under static/.
var seriesModule = strings.TrimPrefix(seriesjs.Path, "internal/ui/static/")

// TestSeriesModule checks the UI's generated series module against the
// metric table, as model.TestReadme does the README's metric list.
func TestSeriesModule(t *testing.T) {
	want, err := seriesjs.Render(filepath.Join("..", "model"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := fs.ReadFile(embedded, path.Join("static", seriesModule))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("static/%s differs from the metric table: run go generate ./internal/model", seriesModule)
	}
	for _, s := range model.AllSeries() {
		if !bytes.Contains(got, []byte(`"`+s.Name+`"`)) {
			t.Errorf("static/%s lacks %s", seriesModule, s.Name)
		}
	}
}

// spelledNames lists the series and metric names of the model spelled in
// JavaScript source, as "line N: word" (the word holding the name:
// pod_cpu_usage_cores). A metric name (cpu_usage_cores) counts when it is
// not inside a longer word: alone ("cpu_usage_cores") or as a series name's
// end (pod_cpu_usage_cores, `${level}_cpu_usage_cores`). A one-word metric
// name (info) counts only as a series name's end (pod_info,
// `${level}_info`): alone it is an ordinary word.
func spelledNames(src string) []string {
	alnum := func(b byte) bool { return '0' <= b && b <= '9' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' }
	type hit struct{ start, end int }
	var out []string
	for i, line := range strings.Split(src, "\n") {
		var hits []hit
		for _, m := range model.Metrics {
			for off := 0; ; {
				j := strings.Index(line[off:], m.Name)
				if j < 0 {
					break
				}
				start, end := off+j, off+j+len(m.Name)
				off = start + 1
				if end < len(line) && (alnum(line[end]) || line[end] == '_') {
					continue // inside a longer word
				}
				if strings.Contains(m.Name, "_") {
					if start > 0 && alnum(line[start-1]) {
						continue
					}
				} else if start == 0 || line[start-1] != '_' {
					continue
				}
				for start > 0 && (alnum(line[start-1]) || line[start-1] == '_') {
					start--
				}
				hits = append(hits, hit{start, end})
			}
		}
		sort.Slice(hits, func(a, b int) bool { return hits[a].start < hits[b].start })
		for _, h := range hits {
			out = append(out, fmt.Sprintf("line %d: %s", i+1, line[h.start:h.end]))
		}
	}
	return out
}

func TestSpelledNames(t *testing.T) {
	// From the table, so that a rename (hack/contract-rename.sh) keeps them names.
	cpu := model.Metrics[model.CPUUsageRate].Name // cpu_usage_cores
	info := model.Metrics[model.Info].Name        // info, one word
	podCPU := model.PromName(model.LevelPod, model.CPUUsageRate)
	podInfo := model.PromName(model.LevelPod, model.Info)
	nodeCap := model.PromName(model.LevelNode, model.CPUCapacity)
	ctrRestarts := model.PromName(model.LevelContainer, model.Restarts)
	ws := model.PromName(model.LevelNamespace, model.MemoryWorkingSet)
	inodes, inodesFree := model.Metrics[model.FilesystemInodes].Name, model.Metrics[model.FilesystemInodesFree].Name
	if strings.Contains(info, "_") || !strings.HasPrefix(inodesFree, inodes) {
		t.Fatalf("the cases below assume %q is one word and %q starts with %q", info, inodesFree, inodes)
	}
	for src, want := range map[string]string{
		`m("` + podInfo + `", L)`:                                podInfo,
		`q("` + cpu + `")`:                                       cpu,
		"m(`${prefix}_" + cpu + "`, L)":                          "_" + cpu,
		"`${level}_" + info + "`":                                "_" + info,
		`const Q = { nodes: "count(` + nodeCap + `)" };`:         nodeCap,
		`// reads ` + ctrRestarts:                                ctrRestarts,
		`x = '` + ws + `{namespace="a"}'`:                        ws,
		inodes:                                                   inodes,
		inodesFree + ` + 1`:                                      inodesFree,
		`"` + model.Metrics[model.Restarts].Name + `"`:           model.Metrics[model.Restarts].Name,
		`a.` + podCPU + `.b`:                                     podCPU,
		`` + model.Metrics[model.NetworkRxRate].Name + `/` + cpu: model.Metrics[model.NetworkRxRate].Name + " " + cpu,
	} {
		var names []string
		for _, hit := range spelledNames(src) {
			names = append(names, hit[strings.Index(hit, ": ")+2:])
		}
		if got := strings.Join(names, " "); got != want {
			t.Errorf("%s: found %q, want %q", src, got, want)
		}
	}
	for _, src := range []string{
		`m(S.pod.info, L)`,
		`q("cpuUsageRate")`,
		`notice("` + info + `", "n/a")`,
		info + `: state.` + info,
		`restarts: q("restarts")`,
		`my` + cpu,
		cpu + `_x`,
		cpu + `9`,
		podInfo + `rmation`,
		`container_oom_kills_total_x`,
	} {
		if got := spelledNames(src); len(got) != 0 {
			t.Errorf("%s: found %q, want none", src, got)
		}
	}
	if got := spelledNames("a\nb(\"" + podCPU + "\")"); len(got) != 1 || got[0] != "line 2: "+podCPU {
		t.Errorf("found %q, want line 2: %s", got, podCPU)
	}
}

// TestNoSeriesNamesInJS: the UI's JavaScript (and its page) spells no
// series name and no metric name of the model; they come from the
// generated module, so renaming one in the metric table renames it in the
// UI. (Vendored files are not kubemon's.)
func TestNoSeriesNamesInJS(t *testing.T) {
	scanned := 0
	err := fs.WalkDir(embedded, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, "static/")
		if d.IsDir() {
			if rel == "vendor" {
				return fs.SkipDir
			}
			return nil
		}
		if rel == seriesModule || (path.Ext(p) != ".js" && path.Ext(p) != ".html") {
			return nil
		}
		b, err := fs.ReadFile(embedded, p)
		if err != nil {
			return err
		}
		scanned++
		for _, hit := range spelledNames(string(b)) {
			t.Errorf("static/%s %s: spelled by hand; use series.js (series.<level>.<metric>)", rel, hit)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if scanned < 15 {
		t.Fatalf("scanned only %d files", scanned)
	}
}
