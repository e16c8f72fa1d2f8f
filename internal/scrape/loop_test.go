package scrape

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubemon/kubemon/internal/model"
)

type scraperFunc func(ctx context.Context, t model.Target) (*model.NodeStats, error)

func (f scraperFunc) Scrape(ctx context.Context, t model.Target) (*model.NodeStats, error) {
	return f(ctx, t)
}

// TestScrapeTimeIsTheSlot: each node's scrape time (its kubelet_up's
// time) is its slot, the interval's multiple plus the node's offset, not
// the moment the request left: two replicas scraping the same node store
// the same kubelet_up sample. The scraper stamps the real start, a few
// milliseconds late, as the client does.
func TestScrapeTimeIsTheSlot(t *testing.T) {
	const interval = 500 * time.Millisecond
	var mu sync.Mutex
	got := map[string][]time.Time{}
	m := NewManager(ManagerOptions{
		Interval: interval, Registerer: prometheus.NewRegistry(),
		Targets: func() []model.Target {
			return []model.Target{{Node: "node-a", URL: "http://a"}, {Node: "node-b", URL: "http://b"}}
		},
		Scraper: scraperFunc(func(_ context.Context, t model.Target) (*model.NodeStats, error) {
			time.Sleep(3 * time.Millisecond)
			return &model.NodeStats{Node: t.Node, ScrapeTime: time.Now()}, nil
		}),
		Handle: func(_ context.Context, tg model.Target, s *model.NodeStats, err error) {
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			got[tg.Node] = append(got[tg.Node], s.ScrapeTime)
			mu.Unlock()
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 7*interval)
	defer cancel()
	_ = m.Run(ctx)
	mu.Lock()
	defer mu.Unlock()
	for _, node := range []string{"node-a", "node-b"} {
		ts := got[node]
		if len(ts) < 3 {
			t.Fatalf("%s: %d scrapes in 7 intervals, want at least 3", node, len(ts))
		}
		for _, st := range ts {
			if off := time.Duration(st.UnixNano() % int64(interval)); off != Offset(node, interval) {
				t.Errorf("%s: scrape time %s is %s into its interval, want the node's offset %s", node, st.Format("15:04:05.000000"), off, Offset(node, interval))
			}
		}
	}
}
