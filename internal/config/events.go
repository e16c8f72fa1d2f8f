package config

import "time"

// Events configures the store of Kubernetes events (internal/events), in
// <dataDir>/events.
type Events struct {
	// Enabled watches the Kubernetes API's events (with Kubernetes
	// discovery; `kubemon demo` makes them from its simulated pods) and
	// serves them at /api/v1/events. On by default; off, no events are
	// watched, stored or served.
	Enabled bool `yaml:"enabled"`
	// Retention is how long an event is kept after it last happened; 0
	// means DefaultEventsRetention, or the store's retention when that is
	// shorter (see EventsRetention).
	Retention time.Duration `yaml:"retention"`
	// MaxSize caps the bytes the stored events take (records and
	// indexes); past it the oldest events are dropped. At least 1MiB.
	MaxSize ByteSize `yaml:"maxSize"`
}

// Defaults of Events.
const (
	DefaultEventsRetention = 7 * 24 * time.Hour
	DefaultEventsMaxSize   = ByteSize(256 << 20)
	minEventsMaxSize       = ByteSize(1 << 20)
)

// EventsRetention is the effective retention of events: Events.Retention
// when set, else DefaultEventsRetention or the samples' Retention,
// whichever is shorter.
func (c *Config) EventsRetention() time.Duration {
	if c.Events.Retention > 0 {
		return c.Events.Retention
	}
	return min(DefaultEventsRetention, c.Retention)
}

// Values of Sink.Events.
const (
	SinkEventsNone = ""
	SinkEventsOff  = "false"
	SinkEventsAlso = "true"
	SinkEventsOnly = "only"
)

// ExportsMetrics reports whether the sink gets the stored samples (every
// sink but an events=only one).
func (s Sink) ExportsMetrics() bool { return s.Events != SinkEventsOnly }

// ExportsEvents reports whether the sink gets the Kubernetes events.
func (s Sink) ExportsEvents() bool { return s.Events == SinkEventsAlso || s.Events == SinkEventsOnly }

func (c *Config) validateEvents(bad func(string, ...any)) {
	if c.Events.Retention < 0 || (c.Events.Retention > 0 && c.Events.Retention < time.Hour) {
		bad("events.retention %s: want at least 1h (0: the default, %s or the retention if shorter)", c.Events.Retention, DefaultEventsRetention)
	}
	if c.Events.MaxSize < minEventsMaxSize {
		bad("events.maxSize %s: want at least 1MiB", c.Events.MaxSize)
	}
	for _, s := range c.Sinks {
		if s.ExportsEvents() && !c.Events.Enabled {
			bad("sinks[%s].events %q: events are off (events.enabled: false)", sinkID(s), s.Events)
		}
	}
}

func validateSinkEvents(id string, s Sink, bad func(string, ...any)) {
	switch s.Events {
	case SinkEventsNone, SinkEventsOff, SinkEventsAlso, SinkEventsOnly:
	default:
		bad("sinks[%s].events %q: want true, false or only", id, s.Events)
		return
	}
	if s.ExportsEvents() && s.Type != SinkInfluxDB {
		bad("sinks[%s].events %q: only influxdb sinks take Kubernetes events (in the Heapster eventer's schema)", id, s.Events)
	}
}

func sinkID(s Sink) string {
	if s.Name != "" {
		return s.Name
	}
	return s.Type
}
