// Package replica keeps the histories of kubemon replicas whole. Every
// replica scrapes every node and keeps its own store; while one is down (a
// crash, a rescheduling) its store misses that range, which the others
// hold. Two parts close that hole:
//
//   - ReadHandler serves the local store over Prometheus remote read
//     (POST /api/v1/read, snappy-compressed protobuf, streamed chunks), so a
//     peer — or any Prometheus — can read its raw samples.
//   - Filler, started before the replica's first scrape, notes where the
//     local history ends (the newest sample the store holds, or the start
//     of the retention when it holds none: a new pod). A few intervals
//     later, when the replica's own samples and rates have resumed, it
//     reads the missing range from a peer by remote read (the caller keeps
//     the replica's own samples out of that range while a peer is ready,
//     store.SetFloor, so both hold the same there) and writes it into the data
//     directory as TSDB blocks on the store's 2-hour grid, which the TSDB
//     loads at its next block reload and merges with the rest (overlapping
//     blocks are compacted vertically; identical samples are kept once).
//
// Peers are base URLs of other replicas' HTTP APIs, found by the caller
// (a static list, or the ready pods that match a label selector).
package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	config_util "github.com/prometheus/common/config"
	pmodel "github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/kubemon/kubemon/internal/store"
)

// ReadPath is where ReadHandler is served.
const ReadPath = "/api/v1/read"

// Limits of ReadHandler.
const (
	// readSampleLimit bounds the samples of one response of the
	// (unstreamed) SAMPLES type; streamed responses are bounded per frame.
	readSampleLimit = 50_000_000
	// readConcurrency is how many remote reads run at once; more wait.
	readConcurrency = 4
	// readFrameBytes bounds one frame of a streamed response, in bytes.
	readFrameBytes = 1 << 20
)

// ReadHandler serves db over Prometheus remote read. Authentication and
// authorization are the caller's (kubemon puts its API's in front).
func ReadHandler(db storage.SampleAndChunkQueryable, log *slog.Logger, reg prometheus.Registerer) http.Handler {
	return remote.NewReadHandler(log, reg, db, func() config.Config { return config.Config{} },
		readSampleLimit, readConcurrency, readFrameBytes)
}

// Options configure a Filler. Zero values take the defaults noted.
type Options struct {
	// DB is the local store, which the fill writes into (its directory).
	DB *tsdb.DB
	// Peers lists the other replicas' base URLs (http://host:port) at the
	// time of the fill; required.
	Peers func(ctx context.Context) ([]string, error)
	// BearerTokenFile, when set, is read at every request and sent as the
	// bearer token (a pod's service account token, which rotates).
	BearerTokenFile string
	// Interval is the scrape interval. The fill reads up to Settle past the
	// start, so it overlaps the replica's own first samples.
	Interval time.Duration
	// Settle is how long after the start the fill begins; default three
	// intervals (the own samples and rates have resumed by then).
	Settle time.Duration
	// Lag is how long after the hole's end the fill waits for the peer to
	// hold every sample up to it (samples carry the kubelet's stats times,
	// up to a housekeeping period old); default the margin, three
	// intervals and at least 30 s.
	Lag time.Duration
	// Retention bounds how far back an empty store is filled; required.
	Retention time.Duration
	// Timeout bounds one remote read (one block's range); default 2 minutes.
	Timeout time.Duration
	// GiveUp is how long the fill keeps trying when no peer answers;
	// default 10 minutes. A replica with no peer (replicas: 1) logs once
	// and stops.
	GiveUp time.Duration
	// Now is the clock; default time.Now.
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Filler fills the hole in a replica's history from a peer.
type Filler struct {
	o Options
	// from and to bound the hole (Unix ms, exclusive and inclusive): a
	// margin before the newest local sample when the Filler was made, and
	// Settle after it was made.
	from, to int64
	// attempted is closed once the first fill attempt has ended.
	attempted chan struct{}

	fills      *prometheus.CounterVec
	samples    prometheus.Counter
	holeLength prometheus.Gauge
}

// New notes where the local history ends: call it before the replica's
// first scrape.
func New(o Options) (*Filler, error) {
	if o.DB == nil || o.Peers == nil {
		return nil, errors.New("replica: a store and peers are required")
	}
	if o.Interval <= 0 || o.Retention <= 0 {
		return nil, fmt.Errorf("replica: interval %s and retention %s must be positive", o.Interval, o.Retention)
	}
	if o.Settle <= 0 {
		o.Settle = 3 * o.Interval
	}
	if o.Lag <= 0 {
		o.Lag = margin(o.Interval)
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.GiveUp <= 0 {
		o.GiveUp = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	now := o.Now()
	from := newest(o.DB)
	if from != math.MinInt64 {
		from -= margin(o.Interval).Milliseconds()
	}
	f := &Filler{o: o, from: from, to: now.Add(o.Settle).UnixMilli(), attempted: make(chan struct{}),
		fills: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kubemon", Subsystem: "replica", Name: "fills_total",
			Help: "Fills of this replica's history from a peer, by result: ok, error (every peer failed; retried), no_peer (none listed; retried), given_up.",
		}, []string{"result"}),
		samples: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "kubemon", Subsystem: "replica", Name: "filled_samples_total",
			Help: "Samples read from a peer and written into the local store.",
		}),
		holeLength: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kubemon", Subsystem: "replica", Name: "hole_seconds",
			Help: "Length of the hole in the local history that the fill reads from a peer, in seconds: from the newest sample the store held at start (or the retention's start) to a few intervals after the start.",
		}),
	}
	if oldest := now.Add(-o.Retention).UnixMilli(); f.from < oldest {
		f.from = oldest
	}
	f.holeLength.Set(float64(f.to-f.from) / 1000)
	if o.Registerer != nil {
		o.Registerer.MustRegister(f.fills, f.samples, f.holeLength)
	}
	return f, nil
}

// Hole is the range the fill reads, in Unix ms: (from, to].
func (f *Filler) Hole() (from, to int64) { return f.from, f.to }

// margin is how far before the newest stored sample the hole starts: a
// scrape's samples carry the kubelet's stats times, up to a housekeeping
// period (10–15 s) before the scrape, and a replica killed between a
// scrape and its store's append loses that scrape, so the newest sample of
// one series says little of another's. Re-reading a few intervals costs
// little; the samples both hold are kept once.
func margin(interval time.Duration) time.Duration { return max(3*interval, 30*time.Second) }

// newest is the time of the newest sample db holds, in Unix ms;
// math.MinInt64 when it holds none.
func newest(db *tsdb.DB) int64 {
	t := int64(math.MinInt64)
	if h := db.Head(); h.NumSeries() > 0 {
		t = h.MaxTime()
	}
	for _, b := range db.Blocks() {
		t = max(t, b.Meta().MaxTime-1) // a block's maxt is exclusive
	}
	return t
}

// Attempted says whether the first fill attempt has ended (filled, failed,
// or no peer was ready). A replica reports ready only then: during a
// rollout the new pod fills from the old one before the old one is
// stopped, and a replica back from a crash serves only once its history
// is whole (or no peer could make it so).
func (f *Filler) Attempted() bool {
	select {
	case <-f.attempted:
		return true
	default:
		return false
	}
}

// Run waits until Settle and Lag have passed, then fills the hole from the first
// peer that answers, retrying every interval while none does, for at most
// GiveUp; then it waits for ctx to end, as a long-running part of kubemon
// does. It never fails the caller: a replica without its peer's history
// still serves its own.
func (f *Filler) Run(ctx context.Context) error {
	f.fill(ctx)
	<-ctx.Done()
	return nil
}

// fill fills the hole, retrying until done, given up, or ctx ends.
func (f *Filler) fill(ctx context.Context) {
	var once sync.Once
	attempted := func() { once.Do(func() { close(f.attempted) }) }
	defer attempted()
	log := f.o.Logger
	wait := time.Until(time.UnixMilli(f.to)) + f.o.Lag
	select {
	case <-ctx.Done():
		return
	case <-time.After(wait):
	}
	deadline := f.o.Now().Add(f.o.GiveUp)
	for attempt := 0; ; attempt++ {
		err := f.fillOnce(ctx)
		attempted()
		switch {
		case err == nil:
			return
		case ctx.Err() != nil:
			return
		case errors.Is(err, errNoPeer):
			f.fills.WithLabelValues("no_peer").Inc()
			if attempt == 0 {
				log.Info("replica: no peer to fill the history from yet; trying again every interval", "hole", msRange(f.from, f.to))
			}
		default:
			f.fills.WithLabelValues("error").Inc()
			log.Warn("replica: filling the history from a peer failed; trying again", "err", err, "hole", msRange(f.from, f.to))
		}
		if f.o.Now().After(deadline) {
			f.fills.WithLabelValues("given_up").Inc()
			log.Warn("replica: gave up filling the history from a peer: this replica lacks that range (its peers still hold it)", "hole", msRange(f.from, f.to), "after", f.o.GiveUp)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(f.o.Interval):
		}
	}
}

var errNoPeer = errors.New("no peer")

// fillOnce fills the hole from the first peer that answers every block's
// range.
func (f *Filler) fillOnce(ctx context.Context) error {
	peers, err := f.o.Peers(ctx)
	if err != nil {
		return fmt.Errorf("listing peers: %w", err)
	}
	if len(peers) == 0 {
		return errNoPeer
	}
	var errs []error
	for _, p := range peers {
		start := time.Now()
		n, blocks, err := f.fillFrom(ctx, p)
		if err != nil {
			errs = append(errs, fmt.Errorf("peer %s: %w", p, err))
			continue
		}
		f.fills.WithLabelValues("ok").Inc()
		f.samples.Add(float64(n))
		f.o.Logger.Info("replica: history filled from a peer", "peer", p, "hole", msRange(f.from, f.to),
			"samples", n, "blocks", blocks, "took", time.Since(start).Round(time.Millisecond).String())
		return nil
	}
	return errors.Join(errs...)
}

// fillFrom reads the hole from peer one block range at a time and moves
// each block into the data directory once written. It returns the samples
// and blocks written.
func (f *Filler) fillFrom(ctx context.Context, peer string) (int, int, error) {
	client, err := f.client(peer)
	if err != nil {
		return 0, 0, err
	}
	tmp := filepath.Join(f.o.DB.Dir(), "replica-fill.tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return 0, 0, err
	}
	if err := os.MkdirAll(tmp, 0o777); err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(tmp)
	var ids []string
	total := 0
	for _, r := range store.BlockRanges(f.from+1, f.to+1) {
		id, n, err := f.fillBlock(ctx, client, tmp, r[0], r[1])
		if err != nil {
			return total, len(ids), fmt.Errorf("range %s: %w", msRange(r[0], r[1]), err)
		}
		total += n
		if id != "" {
			ids = append(ids, id)
		}
	}
	// Every block is written before any is moved in, so a peer that fails
	// half way leaves nothing behind to be filled again by the next.
	for _, id := range ids {
		if err := os.Rename(filepath.Join(tmp, id), filepath.Join(f.o.DB.Dir(), id)); err != nil {
			return total, len(ids), err
		}
	}
	return total, len(ids), f.loaded(ctx, ids)
}

// loaded waits until the store has loaded every block of ids (its next
// block reload), or blocks compacted from them, so a fill counted as done
// is one the queries see.
func (f *Filler) loaded(ctx context.Context, ids []string) error {
	deadline := time.Now().Add(3 * store.BlockReloadInterval)
	for {
		have := map[string]bool{}
		for _, b := range f.o.DB.Blocks() {
			// The block itself, or one it was compacted into (a filled
			// block overlaps the store's and is merged with it at once).
			for _, id := range b.Meta().Compaction.Sources {
				have[id.String()] = true
			}
		}
		missing := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return have[id] })
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the store has not loaded the filled blocks %v", missing)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// fillBlock reads [mint, maxt) from the peer into a block in dir and
// returns its name ("" when the peer held nothing there) and its samples.
func (f *Filler) fillBlock(ctx context.Context, c remote.ReadClient, dir string, mint, maxt int64) (string, int, error) {
	ctx, cancel := context.WithTimeout(ctx, f.o.Timeout)
	defer cancel()
	all, err := labels.NewMatcher(labels.MatchRegexp, labels.MetricName, ".+")
	if err != nil {
		return "", 0, err
	}
	q, err := remote.ToQuery(mint, maxt-1, []*labels.Matcher{all}, nil)
	if err != nil {
		return "", 0, err
	}
	ss, err := c.Read(ctx, q, false)
	if err != nil {
		return "", 0, err
	}
	h, err := store.NewBlockHead(dir, mint, maxt)
	if err != nil {
		return "", 0, err
	}
	defer h.Close()
	app := h.Head.Appender(ctx)
	n := 0
	var it chunkenc.Iterator
	for ss.Next() {
		s := ss.At()
		it = s.Iterator(it)
		var ref storage.SeriesRef
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			if vt != chunkenc.ValFloat {
				continue // kubemon stores floats only
			}
			t, v := it.At()
			if t < mint || t >= maxt {
				continue
			}
			if ref, err = app.Append(ref, s.Labels(), t, v); err != nil {
				_ = app.Rollback()
				return "", n, fmt.Errorf("series %s: %w", s.Labels(), err)
			}
			n++
		}
		if err := it.Err(); err != nil {
			_ = app.Rollback()
			return "", n, err
		}
	}
	if err := ss.Err(); err != nil {
		_ = app.Rollback()
		return "", n, err
	}
	if err := app.Commit(); err != nil {
		return "", n, err
	}
	id, err := h.Flush(ctx, dir, f.o.Logger)
	return id, n, err
}

// client is a remote read client of peer's ReadPath.
func (f *Filler) client(peer string) (remote.ReadClient, error) {
	u, err := url.Parse(peer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("peer %q: want an http(s) URL", peer)
	}
	u = u.JoinPath(ReadPath)
	hc := config_util.DefaultHTTPClientConfig
	if f.o.BearerTokenFile != "" {
		hc.Authorization = &config_util.Authorization{Type: "Bearer", CredentialsFile: f.o.BearerTokenFile}
	}
	return remote.NewReadClient("replica", &remote.ClientConfig{
		URL: &config_util.URL{URL: u}, Timeout: pmodel.Duration(f.o.Timeout), HTTPClientConfig: hc,
		ChunkedReadLimit:      64 << 20,
		AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{prompb.ReadRequest_STREAMED_XOR_CHUNKS, prompb.ReadRequest_SAMPLES},
	})
}

func msRange(from, to int64) string {
	return fmt.Sprintf("(%s, %s]", time.UnixMilli(from).UTC().Format(time.RFC3339), time.UnixMilli(to).UTC().Format(time.RFC3339))
}
