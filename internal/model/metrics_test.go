package model

import (
	"regexp"
	"strings"
	"testing"
)

func TestVocabulary(t *testing.T) {
	promName := regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	heapster := map[string]bool{}
	for i, m := range Metrics {
		if m.ID != MetricID(i) {
			t.Errorf("%s: ID %d at index %d", m.Name, m.ID, i)
		}
		if !promName.MatchString(m.Name) || m.Help == "" || m.Unit == "" || m.HeapsterScale == 0 {
			t.Errorf("%+v: incomplete definition", m)
		}
		if heapster[m.Heapster] && m.Heapster != "" {
			t.Errorf("Heapster name %s twice", m.Heapster)
		}
		heapster[m.Heapster] = true
		if (m.Kind == Counter) != strings.HasSuffix(m.Name, "_total") {
			t.Errorf("%s: counters, and only counters, end in _total", m.Name)
		}
		if m.Kind == Counter && m.Rollup != RollupNone {
			t.Errorf("%s: a counter summed across objects resets whenever one goes away", m.Name)
		}
		if m.RateOf != nil {
			c := Metrics[*m.RateOf]
			if c.Kind != Counter {
				t.Errorf("%s is the rate of %s, not a counter", m.Name, c.Name)
			}
			if m.Heapster != c.Heapster+"_rate" && !strings.HasPrefix(m.Heapster, strings.TrimSuffix(c.Heapster, "s")) {
				t.Errorf("%s: Heapster name %s does not follow %s", m.Name, m.Heapster, c.Heapster)
			}
		}
		if m.Levels == 0 {
			t.Errorf("%s has no level", m.Name)
		}
	}
	if got := PromName(LevelContainer, CPUUsage); got != "container_cpu_usage_seconds_total" {
		t.Errorf("container CPU counter is %s, want the kubelet's container_cpu_usage_seconds_total", got)
	}
	if got := PromName(LevelNode, MemoryWorkingSet); got != "node_memory_working_set_bytes" {
		t.Errorf("node working set is %s", got)
	}
	if m, ok := ByHeapster("cpu/usage_rate"); !ok || m.ID != CPUUsageRate || m.HeapsterScale != 1000 {
		t.Errorf("cpu/usage_rate: %+v %v", m, ok)
	}
	if _, ok := ByHeapster("cpu/nope"); ok {
		t.Error("unknown Heapster name found")
	}
}

func TestLevels(t *testing.T) {
	s := Levels(LevelPod, LevelCluster)
	if !s.Has(LevelPod) || !s.Has(LevelCluster) || s.Has(LevelNode) {
		t.Errorf("set %b", s)
	}
	want := map[Level][2]string{
		LevelContainer: {"container", "pod_container"}, LevelNamespace: {"namespace", "ns"},
		LevelSysContainer: {"system_container", "sys_container"}, LevelCluster: {"cluster", "cluster"},
	}
	for l, w := range want {
		if l.Prefix() != w[0] || l.Heapster() != w[1] {
			t.Errorf("level %d: %s/%s, want %v", l, l.Prefix(), l.Heapster(), w)
		}
	}
}
