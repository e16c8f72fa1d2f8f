package promapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"time"

	"github.com/alecthomas/units"
	pmodel "github.com/prometheus/common/model"
)

// Target is one scraped node as /api/v1/targets lists it.
type Target struct {
	// Labels identify the target: kubemon gives node, instance and job.
	Labels map[string]string
	// ScrapeURL is the URL scraped.
	ScrapeURL string
	// Health is "up", "down" or "unknown" (not scraped yet).
	Health string
	// LastError is the last scrape's error, empty after a success.
	LastError string
	// LastScrape is when the last scrape began; zero before the first.
	LastScrape time.Time
	// LastScrapeDuration is how long it took.
	LastScrapeDuration time.Duration
	// ScrapeInterval and ScrapeTimeout are the target's settings.
	ScrapeInterval, ScrapeTimeout time.Duration
}

// RuntimeInfo is what /api/v1/status/runtimeinfo reports.
type RuntimeInfo struct {
	// StartTime is when kubemon started.
	StartTime time.Time
	// Retention and RetentionSize (bytes; 0 for none) are the store's.
	Retention     time.Duration
	RetentionSize int64
	// ScrapeInterval is kubemon's interval (kubemon's addition to
	// Prometheus's fields): the finest step worth asking for.
	ScrapeInterval time.Duration
	// EventsEnabled says whether /api/v1/events is served (kubemon's
	// addition): the UI asks for no events when it is not.
	EventsEnabled bool
}

// targetJSON is Prometheus's shape of an active target.
type targetJSON struct {
	DiscoveredLabels   map[string]string `json:"discoveredLabels"`
	Labels             map[string]string `json:"labels"`
	ScrapePool         string            `json:"scrapePool"`
	ScrapeURL          string            `json:"scrapeUrl"`
	GlobalURL          string            `json:"globalUrl"`
	LastError          string            `json:"lastError"`
	LastScrape         time.Time         `json:"lastScrape"`
	LastScrapeDuration float64           `json:"lastScrapeDuration"`
	Health             string            `json:"health"`
	ScrapeInterval     string            `json:"scrapeInterval"`
	ScrapeTimeout      string            `json:"scrapeTimeout"`
}

// targetList answers /api/v1/targets: every node as an active target
// (state=active or any; none for state=dropped, kubemon drops none).
func (a *API) targetList(r *http.Request) apiResult {
	state := r.FormValue("state")
	switch state {
	case "", "any", "active", "dropped":
	default:
		return errResult(invalidParam("state", fmt.Errorf("%q: want active, dropped or any", state)))
	}
	active := []targetJSON{}
	if a.targets != nil && state != "dropped" {
		for _, t := range a.targets() {
			active = append(active, targetJSON{
				DiscoveredLabels: t.Labels, Labels: t.Labels, ScrapePool: "kubelet",
				ScrapeURL: t.ScrapeURL, GlobalURL: t.ScrapeURL, LastError: t.LastError,
				LastScrape: t.LastScrape, LastScrapeDuration: t.LastScrapeDuration.Seconds(),
				Health: t.Health, ScrapeInterval: pmodel.Duration(t.ScrapeInterval).String(),
				ScrapeTimeout: pmodel.Duration(t.ScrapeTimeout).String(),
			})
		}
	}
	data, err := json.Marshal(map[string]any{"activeTargets": active, "droppedTargets": []any{}})
	if err != nil {
		return errResult(&apiError{errorInternal, err})
	}
	return apiResult{data: data}
}

// runtimeInfo answers /api/v1/status/runtimeinfo with Prometheus's fields
// that apply, and kubemon's scrapeInterval and eventsEnabled.
func (a *API) runtimeInfo(*http.Request) apiResult {
	ri := a.runtime
	retention := ""
	if ri.Retention > 0 {
		retention = pmodel.Duration(ri.Retention).String()
	}
	if ri.RetentionSize > 0 {
		if retention != "" {
			retention += " or "
		}
		retention += units.Base2Bytes(ri.RetentionSize).String() // as Prometheus: "15d or 1GiB"
	}
	data, err := json.Marshal(map[string]any{
		"startTime":        ri.StartTime,
		"goroutineCount":   runtime.NumGoroutine(),
		"GOMAXPROCS":       runtime.GOMAXPROCS(0),
		"storageRetention": retention,
		"scrapeInterval":   pmodel.Duration(ri.ScrapeInterval).String(),
		"eventsEnabled":    ri.EventsEnabled,
	})
	if err != nil {
		return errResult(&apiError{errorInternal, err})
	}
	return apiResult{data: data}
}
