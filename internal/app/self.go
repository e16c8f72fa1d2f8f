package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/sink"
)

// selfStore is where kubemon's own series go: the store.
type selfStore interface {
	Append(ctx context.Context, b *model.Batch) (int, error)
	Size() int64
}

// selfSeries stores kubemon's own state as kubemon-level series every
// interval, so that rules (which read only the store) can alert on it:
// each metric sink's lag (SinkLag), the store's size and size limit
// (StoreSize, StoreSizeLimit), and the free and total bytes of the data
// directory's filesystem (StoreVolumeAvailable, StoreVolumeSize). The
// store's and sinks' figures are self-metrics on /metrics too, which the
// store does not hold.
type selfSeries struct {
	store    selfStore
	sinks    []*sink.Exporter
	limit    int64  // bytes; 0: no limit
	dir      string // the data directory, whose filesystem is measured; "": none
	interval time.Duration
	log      *slog.Logger
	now      func() time.Time // default time.Now
}

// batch is kubemon's own series at now.
func (s selfSeries) batch(now time.Time) *model.Batch {
	t := now.UnixMilli()
	v := model.NewValues()
	v[model.StoreSize] = float64(s.store.Size())
	if s.limit > 0 {
		v[model.StoreSizeLimit] = float64(s.limit)
	}
	if s.dir != "" {
		if avail, size, err := volumeBytes(s.dir); err == nil {
			v[model.StoreVolumeAvailable], v[model.StoreVolumeSize] = float64(avail), float64(size)
		} else {
			s.log.Warn("measuring the data directory's filesystem", "dir", s.dir, "err", err)
		}
	}
	b := &model.Batch{Time: now, Entries: []model.Entry{{Object: model.Object{Level: model.LevelKubemon}, Time: t, Values: v}}}
	for _, e := range s.sinks {
		lag, ok := e.Lag()
		if !ok {
			continue // no position yet: nothing to say
		}
		v := model.NewValues()
		v[model.SinkLag] = lag
		b.Entries = append(b.Entries, model.Entry{Object: model.Object{Level: model.LevelKubemon, Sink: e.Name()}, Time: t, Values: v})
	}
	return b
}

// run stores the series at once and then every interval until ctx ends.
func (s selfSeries) run(ctx context.Context) error {
	if s.now == nil {
		s.now = time.Now
	}
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		if _, err := s.store.Append(ctx, s.batch(s.now())); err != nil {
			s.log.Warn("storing kubemon's own series", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
