package events

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	corev1 "k8s.io/api/core/v1"
)

// Query selects events. Empty fields match everything; the others must all
// match (exact, case-sensitive).
type Query struct {
	// Namespace is the event's own namespace (metadata.namespace; a
	// Node's events are in "default").
	Namespace string
	// Kind, Name and UID are the involved object's.
	Kind, Name, UID string
	Reason          string
	// Type is Normal or Warning.
	Type string
	// Node selects the events that happened on a node: the Node object's
	// own and those of the objects on it (its pods' events, which their
	// kubelet reports from the node; see events.Node). A pod's events
	// from elsewhere (the scheduler's Scheduled) carry no node.
	Node string
	// Start and End bound when the events last happened (see Time), both
	// included; zero means unbounded.
	Start, End time.Time
	// Limit is the most events returned, newest first; it must be positive.
	Limit int
	// MaxBytes bounds the encoded size of the events returned (their
	// memory); default DefaultQueryMaxBytes.
	MaxBytes int
}

// DefaultQueryMaxBytes is the default of Query.MaxBytes: 10,000 events of
// the largest size kept would take 160 MiB.
const DefaultQueryMaxBytes = 32 << 20

// Result is a query's answer: events newest first (by the time they last
// happened), and whether more matched than Limit or MaxBytes allowed (the
// older ones were left out).
type Result struct {
	Events    []Logged
	Truncated bool
	// SizeCapped says the answer was cut by MaxBytes, not by Limit.
	SizeCapped bool
}

func (q *Query) match(ev *corev1.Event) bool {
	o := ev.InvolvedObject
	return (q.Namespace == "" || ev.Namespace == q.Namespace) &&
		(q.Kind == "" || o.Kind == q.Kind) &&
		(q.Name == "" || o.Name == q.Name) &&
		(q.UID == "" || string(o.UID) == q.UID) &&
		(q.Reason == "" || ev.Reason == q.Reason) &&
		(q.Type == "" || ev.Type == q.Type) &&
		(q.Node == "" || slices.Contains(nodesOf(ev), q.Node))
}

// plan picks the index that narrows q most: the involved object's UID,
// else its kind and name, else the node, the namespace, the reason, the
// type, else every event by time.
func (q *Query) plan() (bucket, prefix []byte) {
	switch {
	case q.UID != "":
		return bktObjectUID, lp(nil, q.UID)
	case q.Kind != "" && q.Name != "":
		return bktObject, lp(lp(nil, q.Kind), q.Name)
	case q.Node != "":
		return bktNode, lp(nil, q.Node)
	case q.Namespace != "":
		return bktNamespace, lp(nil, q.Namespace)
	case q.Reason != "":
		return bktReason, lp(nil, q.Reason)
	case q.Type != "":
		return bktType, lp(nil, q.Type)
	}
	return bktEvents, nil
}

// Query returns the events q selects, newest first. It reads one index
// backwards from q.End and stops at q.Start, at q.Limit events or when ctx
// ends (then with ctx's error): the time spent is bounded by the caller's
// context and the memory by Limit.
func (s *Store) Query(ctx context.Context, q Query) (Result, error) {
	if q.Limit <= 0 {
		return Result{}, fmt.Errorf("events: limit %d: want a positive number", q.Limit)
	}
	if !q.Start.IsZero() && !q.End.IsZero() && q.End.Before(q.Start) {
		return Result{}, fmt.Errorf("events: end %v is before start %v", q.End, q.Start)
	}
	if q.MaxBytes <= 0 {
		q.MaxBytes = DefaultQueryMaxBytes
	}
	bucket, prefix := q.plan()
	var res Result
	size := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		events := tx.Bucket(bktEvents)
		c := tx.Bucket(bucket).Cursor()
		// The first key after the range's end, then backwards.
		end := tkey(maxKeyTime)
		if !q.End.IsZero() {
			end = tkey(q.End.Add(1))
		}
		var start [8]byte
		if !q.Start.IsZero() {
			start = tkey(q.Start)
		}
		k, _ := c.Seek(append(append([]byte(nil), prefix...), end[:]...))
		if k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		ev := new(corev1.Event)
		for n := 0; k != nil && bytes.HasPrefix(k, prefix) && len(k) > len(prefix)+8; k, _ = c.Prev() {
			key := k[len(prefix):]
			if bytes.Compare(key[:8], start[:]) < 0 {
				break
			}
			if n++; n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			rec := events.Get(key)
			if rec == nil {
				continue
			}
			ev.Reset()
			if err := ev.Unmarshal(rec); err != nil {
				return fmt.Errorf("record %x: %w", key, err)
			}
			if !q.match(ev) {
				continue
			}
			if len(res.Events) == q.Limit {
				res.Truncated = true
				break
			}
			if size += len(rec); size > q.MaxBytes && len(res.Events) > 0 {
				res.Truncated, res.SizeCapped = true, true
				break
			}
			res.Events = append(res.Events, Logged{Time: keyTime(key), Event: ev})
			ev = new(corev1.Event)
		}
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	return res, nil
}
