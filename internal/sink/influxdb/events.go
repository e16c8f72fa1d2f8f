package influxdb

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/kubemon/kubemon/internal/sink"
)

// Heapster's eventer wrote each Kubernetes event as one point: in its
// default layout measurement "log/events" with the whole event, serialized
// as JSON, in the string field "value"; with withfields=true measurement
// "events" with the message in the field "message". Its tags were uid (the
// event's), pod_id and pod_name (when the involved object is a Pod),
// hostname (the reporting host) and cluster_name, and with withfields also
// object_name, kind, type, reason, component and namespace_name. Both
// layouts here carry all of those tags; the point's time is when the event
// last happened.
const (
	EventsMeasurement           = "log/events"
	EventsMeasurementWithFields = "events"
	eventsField                 = "value"
	eventsFieldWithFields       = "message"
)

// Event tags, in the lexical order line protocol wants them.
const (
	tagEventCluster   = "cluster_name"
	tagEventComponent = "component"
	tagEventHostname  = "hostname"
	tagEventKind      = "kind"
	tagEventNamespace = "namespace_name"
	tagEventObject    = "object_name"
	tagEventPodID     = "pod_id"
	tagEventPod       = "pod_name"
	tagEventReason    = "reason"
	tagEventType      = "type"
	tagEventUID       = "uid"
)

// WriteEvents writes events in the Heapster eventer's schema (see
// EventsMeasurement), MaxPointsPerRequest a request, through the same
// database, retention policy, credentials and error classification as
// Write. An event line protocol cannot carry is skipped and
// counted in Stats.SkippedInvalid; text that is not UTF-8 or has control
// characters where line protocol refuses them is mended instead (U+FFFD,
// spaces).
func (w *Writer) WriteEvents(ctx context.Context, evs []sink.Event) error {
	if !w.v2 {
		if err := w.ensureDatabase(ctx); err != nil {
			return err
		}
	}
	var enc lineprotocol.Encoder
	enc.SetPrecision(lineprotocol.Millisecond)
	pending := 0
	var firstErr error
	flush := func() error {
		if pending == 0 {
			return nil
		}
		n := pending
		err := w.send(ctx, enc.Bytes(), n)
		pending = 0
		enc.SetBuffer(nil)
		if err == nil {
			return nil
		}
		w.n.failed.Add(uint64(n))
		if retry, _ := sink.IsRetryable(err); retry {
			return err
		}
		if firstErr == nil {
			firstErr = err
		}
		return nil
	}
	for i := range evs {
		if !w.encodeEvent(&enc, evs[i]) {
			w.n.invalid.Add(1)
			enc.ClearErr()
			continue
		}
		if pending++; pending == MaxPointsPerRequest {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return firstErr
}

// encodeEvent adds one event's point; false when it cannot be encoded.
func (w *Writer) encodeEvent(enc *lineprotocol.Encoder, e sink.Event) bool {
	ev := *e.Event
	var field lineprotocol.Value
	var ok bool
	measurement, fieldName := EventsMeasurement, eventsField
	if w.o.WithFields {
		measurement, fieldName = EventsMeasurementWithFields, eventsFieldWithFields
		field, ok = lineprotocol.StringValue(strings.ToValidUTF8(ev.Message, "\uFFFD"))
	} else {
		ev.Kind, ev.APIVersion = "Event", "v1"
		b, err := json.Marshal(&ev)
		if err != nil {
			return false
		}
		field, ok = lineprotocol.StringValueFromBytes(b)
	}
	if !ok {
		return false
	}
	o := ev.InvolvedObject
	podID, podName := "", ""
	if o.Kind == "Pod" {
		podID, podName = string(o.UID), o.Name
	}
	component := ev.Source.Component
	if component == "" {
		component = ev.ReportingController
	}
	enc.StartLine(measurement)
	for _, t := range [...]tag{
		{tagEventCluster, w.o.ClusterName},
		{tagEventComponent, component},
		{tagEventHostname, ev.Source.Host},
		{tagEventKind, o.Kind},
		{tagEventNamespace, ev.Namespace},
		{tagEventObject, o.Name},
		{tagEventPodID, podID},
		{tagEventPod, podName},
		{tagEventReason, ev.Reason},
		{tagEventType, ev.Type},
		{tagEventUID, string(ev.UID)},
	} {
		if t.v != "" {
			enc.AddTag(t.k, cleanTag(t.v))
		}
	}
	enc.AddField(fieldName, field)
	tm := e.Time
	if tm.IsZero() {
		tm = time.Now()
	}
	enc.EndLine(tm)
	return enc.Err() == nil
}

// cleanTag makes s a tag value line protocol carries: valid UTF-8 without
// control characters (each becomes a space).
func cleanTag(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

var _ sink.EventWriter = (*Writer)(nil)
