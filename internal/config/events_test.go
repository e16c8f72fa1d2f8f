package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEventsConfig(t *testing.T) {
	c := Default()
	if errs := c.Validate(); len(errs) != 0 {
		t.Fatalf("defaults: %v", errs)
	}
	if !c.Events.Enabled || c.Events.MaxSize != 256<<20 || c.EventsRetention() != 7*24*time.Hour {
		t.Errorf("defaults: %+v, retention %v", c.Events, c.EventsRetention())
	}
	// Never longer than the samples' retention unless asked.
	c.Retention = 48 * time.Hour
	if c.EventsRetention() != 48*time.Hour {
		t.Errorf("retention 48h: events kept %v", c.EventsRetention())
	}
	c.Events.Retention = 10 * 24 * time.Hour
	if c.EventsRetention() != 10*24*time.Hour {
		t.Errorf("explicit: %v", c.EventsRetention())
	}

	f := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(f, []byte(`
events:
  enabled: true
  retention: 72h
  maxSize: 64MiB
sinks:
  - type: influxdb
    url: http://influx:8086
    events: true
  - type: influxdb
    name: eventer
    url: http://influx:8086
    events: only
  - type: influxdb
    name: plain
    url: http://influx:8086
    events: false
`), 0o600); err != nil {
		t.Fatal(err)
	}
	c = Default()
	if err := c.Load(f); err != nil {
		t.Fatal(err)
	}
	if errs := c.Validate(); len(errs) != 0 {
		t.Fatalf("%v", errs)
	}
	if c.Events.Retention != 72*time.Hour || c.Events.MaxSize != 64<<20 {
		t.Errorf("loaded %+v", c.Events)
	}
	got := []bool{c.Sinks[0].ExportsMetrics(), c.Sinks[0].ExportsEvents(), c.Sinks[1].ExportsMetrics(), c.Sinks[1].ExportsEvents(), c.Sinks[2].ExportsMetrics(), c.Sinks[2].ExportsEvents()}
	if want := []bool{true, true, false, true, true, false}; !slices.Equal(got, want) {
		t.Errorf("metrics/events of true, only, false: %v, want %v", got, want)
	}

	s, err := ParseSink("influxdb:http://monitoring-influxdb:8086?db=k8s&events=only")
	if err != nil || !s.ExportsEvents() || s.ExportsMetrics() {
		t.Errorf("events=only: %+v %v", s, err)
	}

	c = Default()
	c.Events.Retention = time.Minute
	c.Events.MaxSize = 1000
	c.Sinks = []Sink{
		{Name: "rw", Type: SinkRemoteWrite, URL: "http://p/api/v1/write", Events: "true"},
		{Name: "typo", Type: SinkInfluxDB, URL: "http://i:8086", Events: "yes"},
	}
	var msgs []string
	for _, err := range c.Validate() {
		msgs = append(msgs, err.Error())
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{
		"events.retention 1m0s: want at least 1h",
		"events.maxSize 1000B: want at least 1MiB",
		`sinks[rw].events "true": only influxdb sinks take Kubernetes events`,
		`sinks[typo].events "yes": want true, false or only`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("missing %q in:\n%s", want, all)
		}
	}
	c = Default()
	c.Events.Enabled = false
	c.Sinks = []Sink{{Type: SinkInfluxDB, URL: "http://i:8086", Events: "only"}}
	if errs := c.Validate(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "events are off") {
		t.Errorf("events sink with events off: %v", errs)
	}
}
