package sim

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// kubeletFixture is a v1.35 kubelet's /metrics/cadvisor (containerd 2.2,
// cgroup v2), kept by the scrape package's tests (provenance in its README).
const kubeletFixture = "../scrape/testdata/k8s-1.35_metrics_cadvisor.txt"

// cadvisorDifferences are the deliberate differences between the kubelet
// payload and the fixture, family by family: the label names the fixture
// has that the simulator's lacks (or "family" when the whole family is
// left out), with the reason. None today: every family and label name is
// there. Other differences, not of families or label names:
//   - the pod network series are on the pod's cgroup (as the lean payload
//     and docker-era kubelets have them), not on its sandbox's: kubemon reads
//     a pod's network from its pod cgroup;
//   - one interface (eth0) per network namespace: the fixture's nine tunnel
//     devices (gre0, sit0, tunl0 …) exist where their kernel modules are
//     loaded (linuxkit), not on a typical cloud node;
//   - containers have container_fs_{usage,limit}_bytes on /dev/vda1 (their
//     rootfs, kubemon's filesystem usage in the cAdvisor-only mode), which
//     a cgroup v2 kubelet reports for the root cgroup only;
//   - the root cgroup has no CFS series (the fixture's node is a kind
//     container with a CPU quota);
//   - 12 root filesystems, fixed (the fixture's 20 are the mounts there
//     were when its kubelet started).
var cadvisorDifferences = map[string][]string{}

type famShape struct {
	typ, help string
	labels    []string // union of label names, sorted
}

func shapes(t *testing.T, fams map[string]*dto.MetricFamily) map[string]famShape {
	t.Helper()
	out := map[string]famShape{}
	for name, f := range fams {
		set := map[string]bool{}
		for _, m := range f.Metric {
			for _, l := range m.Label {
				set[l.GetName()] = true
			}
		}
		s := famShape{typ: f.GetType().String(), help: f.GetHelp()}
		for l := range set {
			s.labels = append(s.labels, l)
		}
		sort.Strings(s.labels)
		out[name] = s
	}
	return out
}

// checkNoDuplicates fails on two series of a family with the same labels,
// and on series of a family not sorted by label values (as the kubelet's
// registry sorts them).
func checkSeries(t *testing.T, body []byte) {
	t.Helper()
	var prev, prevName string
	seen := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndex(line, "}")
		if i < 0 {
			i = strings.IndexByte(line, ' ')
		}
		series := line[:i+1]
		if seen[series] {
			t.Fatalf("duplicate series %s", series)
		}
		seen[series] = true
		name, _, _ := strings.Cut(series, "{")
		if name == prevName && labelValues(series) < labelValues(prev) {
			t.Errorf("series out of order:\n%s\nafter\n%s", series, prev)
		}
		prev, prevName = series, name
	}
}

// labelValues are a series' label values joined by NUL, in label order
// (the names are sorted in the exposition).
func labelValues(series string) string {
	_, ls, _ := strings.Cut(series, "{")
	var vals []string
	for _, kv := range strings.Split(strings.TrimSuffix(ls, "}"), `",`) {
		_, v, _ := strings.Cut(kv, `="`)
		vals = append(vals, strings.TrimSuffix(v, `"`))
	}
	return strings.Join(vals, "\x00")
}

// TestCadvisorKubeletFamilies: the kubelet payload has every family of a
// real kubelet's /metrics/cadvisor with its type, help and label names
// (but the deliberate differences above), no other family, parses with
// expfmt, and has no duplicate series; in both modes, with every fault
// that changes a payload's values.
func TestCadvisorKubeletFamilies(t *testing.T) {
	fixture, err := os.ReadFile(kubeletFixture)
	if err != nil {
		t.Fatal(err)
	}
	want := shapes(t, parseProm(t, fixture))
	if len(want) < 70 {
		t.Fatalf("fixture has %d families", len(want))
	}
	for _, mode := range []Mode{ModeRealistic, ModeConstant} {
		t.Run(string(mode), func(t *testing.T) {
			c, clk := startCluster(t, Options{Nodes: 2, PodsPerNode: 12, ContainersPerPod: 3, Mode: mode})
			n := c.Nodes()[1]
			if mode == ModeRealistic {
				clk.Advance(7 * time.Hour) // pods churned, containers restarted
				pods := getPods(t, n)
				p := pods.Items[0]
				if rec := handlerGet(t, c.Handler(), http.MethodPost, "/sim/fault?pod="+p.Namespace+"/"+p.Name+"&container="+p.Spec.Containers[0].Name+"&fault=crashloop"); rec.Code != http.StatusNoContent {
					t.Fatalf("crashloop: %d", rec.Code)
				}
				clk.Advance(5 * time.Second) // the container waits: its cgroup is gone
			}
			body := mustGet(t, nodeURL(n, "/metrics/cadvisor"))
			checkSeries(t, body)
			got := shapes(t, parseProm(t, body))
			for name, w := range want {
				g, ok := got[name]
				diff := cadvisorDifferences[name]
				switch {
				case !ok && slices.Contains(diff, "family"):
				case !ok:
					t.Errorf("family %s missing", name)
				case g.typ != w.typ || g.help != w.help:
					t.Errorf("%s: %s %q, want %s %q", name, g.typ, g.help, w.typ, w.help)
				default:
					for _, l := range w.labels {
						if !slices.Contains(g.labels, l) && !slices.Contains(diff, l) {
							t.Errorf("%s: label %s missing (has %v)", name, l, g.labels)
						}
					}
					for _, l := range g.labels {
						if !slices.Contains(w.labels, l) {
							t.Errorf("%s: label %s not in the fixture's %v", name, l, w.labels)
						}
					}
				}
			}
			for name := range got {
				if _, ok := want[name]; !ok {
					t.Errorf("family %s not in the fixture", name)
				}
			}
			// Families in the fixture's order (by name).
			var order []string
			for _, line := range strings.Split(string(body), "\n") {
				if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
					order = append(order, strings.Fields(name)[0])
				}
			}
			if !slices.IsSorted(order) {
				t.Errorf("families not sorted by name: %v", order)
			}
		})
	}
}

// TestCadvisorKubeletAgreesWithLean: every series of the lean payload is in
// the kubelet payload with the same value and timestamp (the lean payload
// has no series of its own), so what kubemon reads does not depend on the
// payload.
func TestCadvisorKubeletAgreesWithLean(t *testing.T) {
	for _, mode := range []Mode{ModeRealistic, ModeConstant} {
		clk := newFakeClock(testEpoch.Add(3 * time.Hour))
		get := func(p CadvisorPayload) map[string]string {
			c, err := New(Options{Nodes: 1, PodsPerNode: 20, ContainersPerPod: 2, Mode: mode, Now: clk.Now, Cadvisor: p})
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			(&nodeHandler{c: c}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics/cadvisor", nil))
			out := map[string]string{}
			for _, line := range bytes.Split(rec.Body.Bytes(), []byte("\n")) {
				if len(line) == 0 || line[0] == '#' {
					continue
				}
				s := string(line)
				i := strings.LastIndex(s, "}")
				if i < 0 {
					i = strings.IndexByte(s, ' ')
				}
				out[s[:i+1]] = s[i+1:]
			}
			return out
		}
		lean, kubelet := get(CadvisorLean), get(CadvisorKubelet)
		if len(kubelet) < 3*len(lean) {
			t.Errorf("%s: kubelet payload %d series, lean %d", mode, len(kubelet), len(lean))
		}
		for s, v := range lean {
			if kv, ok := kubelet[s]; !ok || kv != v {
				t.Errorf("%s: lean %s%s, kubelet %q (present %v)", mode, s, v, kv, ok)
			}
		}
	}
}

func TestParseCadvisorPayload(t *testing.T) {
	for _, s := range []string{"kubelet", "lean"} {
		if p, err := ParseCadvisorPayload(s); err != nil || string(p) != s {
			t.Errorf("%s: %v %v", s, p, err)
		}
	}
	if _, err := ParseCadvisorPayload("full"); err == nil {
		t.Error("full: no error")
	}
	if _, err := New(Options{Cadvisor: "full"}); err == nil {
		t.Error("New with Cadvisor full: no error")
	}
}
