package scrape

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/model"
)

func TestDecodeResource(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	entries, err := DecodeResource(readFixture(t, "metrics_resource_kind_e2e_70pods.txt"), "kind", now)
	if err != nil {
		t.Fatal(err)
	}
	var count [model.NumLevels]int
	for _, e := range entries {
		count[e.Object.Level]++
	}
	if count[model.LevelNode] != 1 || count[model.LevelPod] != 70 || count[model.LevelContainer] != 70 {
		t.Errorf("levels %v", count)
	}
	n := find(entries, node("kind"))
	if n.Values[model.CPUUsage] != 357.35491 || n.Values[model.MemoryWorkingSet] != 1.616273408e+09 || n.Time != 1633253809720 {
		t.Errorf("node %+v", n)
	}
	c := find(entries, ctr("kind", "sleeper-1", "sleeper-1-77f658b69-2msf9", "sleeper"))
	if c == nil || c.Values[model.CPUUsage] != 1.421659 || c.Values[model.MemoryWorkingSet] != 495616 || c.Time != 1633253814014 {
		t.Fatalf("container %+v", c)
	}
	if !math.IsNaN(c.Values[model.MemoryRSS]) {
		t.Error("RSS is not in /metrics/resource: it must stay absent")
	}
	p := find(entries, pod("kind", "sleeper-1", "sleeper-1-77f658b69-2msf9"))
	if p == nil || p.Values[model.CPUUsage] != 1.561556 || p.Values[model.MemoryWorkingSet] != 782336 {
		t.Errorf("pod %+v", p)
	}

	// The Go zero start time is ignored; a real one is kept.
	entries, err = DecodeResource(readFixture(t, "metrics_resource_zero_start_time_fragment.txt"), "n", now)
	if err != nil {
		t.Fatal(err)
	}
	zero := find(entries, ctr("n", "kubernetes-dashboard", "kubernetes-dashboard-metrics-server-77db45cdf4-fppzx", "metrics-server"))
	set := find(entries, ctr("n", "kubernetes-dashboard", "kubernetes-dashboard-metrics-server-77db45cdf4-tpx4v", "metrics-server"))
	if zero.Start != 0 || set.Start != 1650974202419 {
		t.Errorf("start times %d %d", zero.Start, set.Start)
	}

	for name, payload := range map[string]string{
		"garbage":      "node_cpu_usage_seconds_total{ 1\n",
		"no labels":    "container_cpu_usage_seconds_total 1\n",
		"negative cpu": "node_cpu_usage_seconds_total -5\n",
	} {
		if _, err := DecodeResource([]byte(payload), "n", now); err == nil || !strings.Contains(err.Error(), "decode resource metrics") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestClientResourceEndpoint(t *testing.T) {
	body := readFixture(t, "metrics_resource_kind_e2e_70pods.txt")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics/resource" {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}))
	defer srv.Close()
	ns, err := NewClient(ClientOptions{Endpoint: EndpointResource}).Scrape(context.Background(), model.Target{Node: "kind", URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if len(ns.Entries) != 141 {
		t.Errorf("%d entries, want 141 (node, 70 pods, 70 containers)", len(ns.Entries))
	}
}
