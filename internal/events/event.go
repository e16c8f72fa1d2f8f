// Package events keeps the cluster's Kubernetes Events: a Watcher lists and
// watches core/v1 Events from the Kubernetes API (resuming on its
// resourceVersion, relisting when it expired), a PodFeed makes the same
// lifecycle events from pod snapshots where there is no API (the demo's
// simulated cluster), and a Store keeps them in a bbolt file under the data
// directory, indexed by time, involved object, namespace, reason, type and
// node, with a retention time and a size cap, and a sequence that sinks
// export from.
//
// An event's time is when it last happened (see Time); an event seen again
// with the same UID (its count increased) replaces its record.
package events

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// MaxMessageBytes is the most bytes of an event's message kept; a longer
// message is cut at a UTF-8 boundary and ends with "…".
const MaxMessageBytes = 4 << 10

// MaxRecordBytes is the largest encoded event kept. An event still larger
// once its message is cut and its managed fields dropped loses its labels
// and annotations; one larger still is refused (counted in
// kubemon_events_rejected_total).
const MaxRecordBytes = 16 << 10

// maxFuture is how far past the receive time an event's time may be; a
// later time (a client with a clock far ahead) is taken as the receive
// time, so that retention and the size cap treat it as new, not as
// forever young.
const maxFuture = time.Hour

// Time is when ev last happened: the latest of series.lastObservedTime,
// lastTimestamp and eventTime (core/v1 Events written through the
// events.k8s.io API have eventTime and a series; the older recorders set
// lastTimestamp), else firstTimestamp, else creationTimestamp; the zero
// time when none is set.
func Time(ev *corev1.Event) time.Time {
	var t time.Time
	if ev.Series != nil && ev.Series.LastObservedTime.After(t) {
		t = ev.Series.LastObservedTime.Time
	}
	if ev.LastTimestamp.After(t) {
		t = ev.LastTimestamp.Time
	}
	if ev.EventTime.After(t) {
		t = ev.EventTime.Time
	}
	switch {
	case !t.IsZero():
	case !ev.FirstTimestamp.IsZero():
		t = ev.FirstTimestamp.Time
	case !ev.CreationTimestamp.IsZero():
		t = ev.CreationTimestamp.Time
	}
	return t
}

// FirstTime is when ev first happened: firstTimestamp, else eventTime (the
// first occurrence of an events.k8s.io series), else Time.
func FirstTime(ev *corev1.Event) time.Time {
	switch {
	case !ev.FirstTimestamp.IsZero():
		return ev.FirstTimestamp.Time
	case !ev.EventTime.IsZero():
		return ev.EventTime.Time
	}
	return Time(ev)
}

// Count is how many times ev happened: the larger of count and
// series.count, at least 1.
func Count(ev *corev1.Event) int32 {
	n := ev.Count
	if ev.Series != nil && ev.Series.Count > n {
		n = ev.Series.Count
	}
	return max(n, 1)
}

// Node is the node an event is about or was reported from: the reporting
// kubelet's host (source.host, or reportingInstance for kubelets that
// report through events.k8s.io), else the involved object's name when it
// is a Node; "" otherwise (a scheduler's or controller's event).
func Node(ev *corev1.Event) string {
	switch {
	case ev.Source.Host != "":
		return ev.Source.Host
	case ev.ReportingController == "kubelet" && ev.ReportingInstance != "":
		return ev.ReportingInstance
	case ev.InvolvedObject.Kind == "Node":
		return ev.InvolvedObject.Name
	}
	return ""
}

// nodesOf lists the nodes ev happened on, as Query.Node selects them:
// Node(ev), and the involved object's name when it is a Node reported
// from elsewhere; none when neither is known.
func nodesOf(ev *corev1.Event) []string {
	var out []string
	if n := Node(ev); n != "" {
		out = append(out, n)
	}
	if o := ev.InvolvedObject; o.Kind == "Node" && o.Name != "" && (len(out) == 0 || out[0] != o.Name) {
		out = append(out, o.Name)
	}
	return out
}

// Controller is who reported ev: source.component, else
// reportingController.
func Controller(ev *corev1.Event) string {
	if ev.Source.Component != "" {
		return ev.Source.Component
	}
	return ev.ReportingController
}

// indexTime is the time ev is filed under: Time, or the receive time when
// ev has none or one more than maxFuture ahead of it.
func indexTime(ev *corev1.Event, received time.Time) time.Time {
	t := Time(ev)
	if t.IsZero() || t.After(received.Add(maxFuture)) {
		return received
	}
	return t
}

// cutMessage cuts s to at most n bytes at a UTF-8 boundary, ending with
// "…" when cut.
func cutMessage(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	end := n - len(ellipsis)
	for end > 0 && end < len(s) && s[end]&0xC0 == 0x80 {
		end-- // not in the middle of a UTF-8 sequence
	}
	return s[:end] + ellipsis
}
