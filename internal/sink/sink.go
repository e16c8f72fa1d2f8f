// Package sink delivers everything kubemon stores to external systems
// (InfluxDB in Heapster's schema, Prometheus remote write, ...). The store's
// own TSDB is the durable log: each sink keeps a position (a time up to which
// every stored sample was delivered) in the data directory and reads the
// store from there, so a sink that is down, slow or restarting, or a kubemon
// that restarts, loses nothing the store still holds. Writers encode and send
// one batch to one destination; the Exporter does the reading, batching,
// sharding, retrying and accounting for every writer alike.
package sink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// Sample is one stored sample: T in Unix milliseconds, V as stored (a
// staleness marker is value.StaleNaN; writers that cannot carry it skip it).
type Sample struct {
	T int64
	V float64
}

// Series is one stored series (its full label set, __name__ included, as
// the store holds it) with its samples of one batch, in time order.
type Series struct {
	Labels  labels.Labels
	Samples []Sample
}

// Writer sends batches to one destination.
type Writer interface {
	// Write delivers the batch. It returns nil when the destination
	// accepted all of it, an error wrapped by Retryable when sending the
	// same batch again may succeed (a timeout, a refused connection, 429,
	// 5xx), and any other error when it may not (other 4xx: the batch is
	// then dropped, counted and logged with the error's text, which should
	// carry the server's message). Write must honour ctx's deadline. Calls
	// may be concurrent (one per shard); a series is always in the same
	// shard, so its samples arrive in time order.
	Write(ctx context.Context, batch []Series) error
}

// Observer is implemented by Writers that learn from what they are given
// (InfluxDB's takes a pod's labels from the pod's info series). When kubemon
// resumes a window it was sending before it stopped, the batches the sink
// already accepted are not written again but given to Observe, in the order
// they were formed, so the Writer knows what it would have learnt from them.
type Observer interface {
	Observe(batch []Series)
}

// RetryableError marks a failed Write that may be retried. After, when
// positive, is the delay the server asked for (Retry-After).
type RetryableError struct {
	Err   error
	After time.Duration
}

func (e *RetryableError) Error() string {
	if e.After > 0 {
		return fmt.Sprintf("%v (retry after %v)", e.Err, e.After)
	}
	return e.Err.Error()
}

func (e *RetryableError) Unwrap() error { return e.Err }

// Retryable wraps err as retryable, after the given delay if positive.
func Retryable(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &RetryableError{Err: err, After: after}
}

// IsRetryable reports whether err, or an error it wraps, is retryable, and
// the delay asked for.
func IsRetryable(err error) (bool, time.Duration) {
	var re *RetryableError
	if errors.As(err, &re) {
		return true, re.After
	}
	return false, 0
}
