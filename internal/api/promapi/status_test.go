package promapi

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

func TestTargetsAndRuntimeInfo(t *testing.T) {
	scraped := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	e := newTestEnv(t, openTestDB(t), func(o *Options) {
		o.Targets = func() []Target {
			return []Target{
				{Labels: map[string]string{"node": "n1"}, ScrapeURL: "https://10.0.0.1:10250/stats/summary", Health: "up",
					LastScrape: scraped, LastScrapeDuration: 120 * time.Millisecond, ScrapeInterval: 15 * time.Second, ScrapeTimeout: 10 * time.Second},
				{Labels: map[string]string{"node": "n2"}, Health: "down", LastError: "connection refused"},
			}
		}
		o.Runtime = RuntimeInfo{StartTime: scraped, Retention: 15 * 24 * time.Hour, RetentionSize: 1 << 30, ScrapeInterval: 15 * time.Second, EventsEnabled: true}
	})
	var targets struct {
		Active []struct {
			Labels             map[string]string `json:"labels"`
			DiscoveredLabels   map[string]string `json:"discoveredLabels"`
			ScrapePool         string            `json:"scrapePool"`
			ScrapeURL          string            `json:"scrapeUrl"`
			GlobalURL          string            `json:"globalUrl"`
			LastError          string            `json:"lastError"`
			LastScrape         time.Time         `json:"lastScrape"`
			LastScrapeDuration float64           `json:"lastScrapeDuration"`
			Health             string            `json:"health"`
			ScrapeInterval     string            `json:"scrapeInterval"`
			ScrapeTimeout      string            `json:"scrapeTimeout"`
		} `json:"activeTargets"`
		Dropped []any `json:"droppedTargets"`
	}
	strictDecode(t, e.mustSucceed(t, http.MethodGet, "/api/v1/targets", nil).Data, &targets)
	if len(targets.Active) != 2 || targets.Dropped == nil {
		t.Fatalf("targets: %+v", targets)
	}
	a, b := targets.Active[0], targets.Active[1]
	if a.Labels["node"] != "n1" || a.Health != "up" || !a.LastScrape.Equal(scraped) || a.LastScrapeDuration != 0.12 ||
		a.ScrapeInterval != "15s" || a.ScrapeTimeout != "10s" || a.ScrapeURL != "https://10.0.0.1:10250/stats/summary" {
		t.Errorf("first target %+v", a)
	}
	if b.Health != "down" || b.LastError != "connection refused" {
		t.Errorf("second target %+v", b)
	}
	strictDecode(t, e.mustSucceed(t, http.MethodGet, "/api/v1/targets", url.Values{"state": {"dropped"}}).Data, &targets)
	if len(targets.Active) != 0 {
		t.Errorf("state=dropped listed %d active targets", len(targets.Active))
	}
	if code, env := e.do(t, http.MethodGet, "/api/v1/targets", url.Values{"state": {"bogus"}}); code != 400 || env.ErrorType != "bad_data" {
		t.Errorf("state=bogus: %d %+v", code, env)
	}

	var ri struct {
		StartTime        time.Time `json:"startTime"`
		Goroutines       int       `json:"goroutineCount"`
		GOMAXPROCS       int       `json:"GOMAXPROCS"`
		StorageRetention string    `json:"storageRetention"`
		ScrapeInterval   string    `json:"scrapeInterval"`
		EventsEnabled    *bool     `json:"eventsEnabled"`
	}
	strictDecode(t, e.mustSucceed(t, http.MethodGet, "/api/v1/status/runtimeinfo", nil).Data, &ri)
	if ri.StorageRetention != "15d or 1GiB" || ri.ScrapeInterval != "15s" || !ri.StartTime.Equal(scraped) || ri.Goroutines <= 0 || ri.GOMAXPROCS <= 0 ||
		ri.EventsEnabled == nil || !*ri.EventsEnabled {
		t.Errorf("runtimeinfo %+v", ri)
	}
}
