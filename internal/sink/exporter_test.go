package sink

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/kubemon/kubemon/internal/store"
)

// fixture is a real store holding nSeries series with one sample every
// step from start to end, the last one a staleness marker for series 0.
type fixture struct {
	st         *store.Store
	start, end time.Time
	step       time.Duration
	want       map[string][]Sample // by series
}

func newFixture(t *testing.T, nSeries int, start, end time.Time, step time.Duration) *fixture {
	t.Helper()
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{st: st, start: start, end: end, step: step, want: map[string][]Sample{}}
	app := st.DB().Appender(context.Background())
	last := start.Add(end.Sub(start) / step * step)
	stale := 0
	for ts := start; !ts.After(end); ts = ts.Add(step) {
		for i := range nSeries {
			ls := labels.FromStrings(labels.MetricName, "container_memory_working_set_bytes", "pod", fmt.Sprintf("p%03d", i), "namespace", "ns")
			v := float64(i*1000) + float64(ts.Unix()%1000)
			if i == 0 && ts.Equal(last) {
				v = math.Float64frombits(value.StaleNaN)
				stale++
			}
			if _, err := app.Append(0, ls, ts.UnixMilli(), v); err != nil {
				t.Fatal(err)
			}
			f.want[ls.String()] = append(f.want[ls.String()], Sample{T: ts.UnixMilli(), V: v})
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if stale != 1 {
		t.Fatalf("fixture wrote %d staleness markers, want 1", stale)
	}
	return f
}

// recorder is a Writer that keeps what it accepted; fail, when set, decides
// per call whether to fail it.
type recorder struct {
	mu    sync.Mutex
	got   map[string][]Sample
	calls int
	fail  func(call int, b []Series) error
}

func (r *recorder) Write(ctx context.Context, b []Series) error {
	r.mu.Lock()
	r.calls++
	call := r.calls
	fail := r.fail
	r.mu.Unlock()
	if fail != nil {
		if err := fail(call, b); err != nil {
			return err
		}
	}
	n := 0
	for _, s := range b {
		n += len(s.Samples)
	}
	if n > 50 {
		return fmt.Errorf("batch of %d samples exceeds the batch size", n)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.got == nil {
		r.got = map[string][]Sample{}
	}
	for _, s := range b {
		r.got[s.Labels.String()] = append(r.got[s.Labels.String()], s.Samples...)
	}
	return nil
}

// check compares what was delivered with the fixture, sample for sample:
// every sample once, in time order, staleness markers included.
func (f *fixture) check(t *testing.T, got map[string][]Sample, skip func(series string) bool) {
	t.Helper()
	n := 0
	for k, want := range f.want {
		if skip != nil && skip(k) {
			if len(got[k]) != 0 {
				t.Errorf("%s: %d samples delivered, want none", k, len(got[k]))
			}
			continue
		}
		g := got[k]
		if len(g) != len(want) {
			t.Errorf("%s: %d samples delivered, want %d", k, len(g), len(want))
			continue
		}
		for i := range want {
			if g[i].T != want[i].T || math.Float64bits(g[i].V) != math.Float64bits(want[i].V) {
				t.Errorf("%s sample %d: %v, want %v", k, i, g[i], want[i])
				break
			}
		}
		n += len(g)
	}
	if n == 0 {
		t.Fatal("nothing was compared")
	}
	for k := range got {
		if _, ok := f.want[k]; !ok {
			t.Errorf("unexpected series %s", k)
		}
	}
}

func startAt(t *testing.T, dir, name string, at time.Time) {
	t.Helper()
	p, err := openPosition(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.save(position{To: at.UnixMilli()}); err != nil {
		t.Fatal(err)
	}
}

// behind is a fixture of n series with a sample every step over the last
// span, and a position directory whose sink has delivered none of it.
func behind(t *testing.T, n int, span, step time.Duration) (*fixture, string) {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	f := newFixture(t, n, now.Add(-span), now.Add(-time.Second), step)
	dir := t.TempDir()
	startAt(t, dir, "test", f.start.Add(-time.Second))
	return f, dir
}

func opts(dir string, w Writer, st *store.Store) Options {
	return Options{Name: "test", Writer: w, Store: st.Queryable(), Dir: dir, Interval: 20 * time.Millisecond,
		Settle: time.Millisecond, MaxWindow: 2 * time.Minute, BatchSize: 50, Shards: 3,
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
}

// runUntil runs e until cond holds (checked every 10 ms) or 20 s pass.
func runUntil(t *testing.T, e *Exporter, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	stopped := func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return within 10 s of its context ending")
			return nil
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not reached within 20 s (run: %v)", stopped())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := stopped(); err != nil {
		t.Fatal(err)
	}
}

func caughtUp(e *Exporter, to time.Time) func() bool {
	return func() bool {
		s := e.pos.get()
		return s.Acked == nil && s.To >= to.UnixMilli()
	}
}

// TestExporterDeliversEverythingOnce: 10 minutes of 40 series behind the
// sink's position are delivered window by window, in batches of at most 50
// samples over 3 shards, each sample once and in order.
func TestExporterDeliversEverythingOnce(t *testing.T) {
	f, dir := behind(t, 40, 10*time.Minute, 15*time.Second)
	w := &recorder{}
	reg := prometheus.NewRegistry()
	o := opts(dir, w, f.st)
	o.Registerer = reg
	e, err := NewExporter(o)
	if err != nil {
		t.Fatal(err)
	}
	runUntil(t, e, caughtUp(e, f.end))
	f.check(t, w.got, nil)
	total := 0
	for _, s := range f.want {
		total += len(s)
	}
	if sent := testutil.ToFloat64(e.m.sent); sent != float64(total) {
		t.Errorf("samples_sent_total %v, want %d", sent, total)
	}
	if lag := testutil.ToFloat64(e.m.lag); !(lag >= 0 && lag < 30) {
		t.Errorf("lag %v s after catching up", lag)
	}
}

// TestExporterRetries: a sink that fails with retryable errors (every other
// call, and a 429 with a Retry-After) still gets every sample exactly once.
func TestExporterRetries(t *testing.T) {
	f, dir := behind(t, 20, 3*time.Minute, 10*time.Second)
	w := &recorder{fail: func(call int, _ []Series) error {
		switch {
		case call == 2:
			return Retryable(errors.New("429 slow down"), 20*time.Millisecond)
		case call%2 == 1:
			return Retryable(errors.New("503 unavailable"), 0)
		}
		return nil
	}}
	e, err := NewExporter(opts(dir, w, f.st))
	if err != nil {
		t.Fatal(err)
	}
	runUntil(t, e, caughtUp(e, f.end))
	f.check(t, w.got, nil)
	if r := testutil.ToFloat64(e.m.retried); !(r > 0) {
		t.Errorf("samples_retried_total %v, want > 0", r)
	}
	if fl := testutil.ToFloat64(e.m.failed); fl != 0 {
		t.Errorf("samples_failed_total %v, want 0", fl)
	}
}

// TestExporterRefusedBatch: batches the sink refuses for good are counted
// and not retried; everything else arrives, and the position moves on.
func TestExporterRefusedBatch(t *testing.T) {
	f, dir := behind(t, 20, 3*time.Minute, 10*time.Second)
	bad := `pod="p007"`
	refused := 0
	var mu sync.Mutex
	w := &recorder{}
	w.fail = func(_ int, b []Series) error {
		for _, s := range b {
			if strings.Contains(s.Labels.String(), bad) {
				mu.Lock()
				for _, s := range b {
					refused += len(s.Samples)
				}
				mu.Unlock()
				return errors.New("400 Bad Request: invalid sample")
			}
		}
		return nil
	}
	e, err := NewExporter(opts(dir, w, f.st))
	if err != nil {
		t.Fatal(err)
	}
	runUntil(t, e, caughtUp(e, f.end))
	// Whole batches holding the bad series were refused: every series that
	// arrived arrived completely, and the bad one not at all.
	got := map[string][]Sample{}
	for k, v := range w.got {
		if len(v) == len(f.want[k]) {
			got[k] = v
		}
	}
	f.check(t, got, func(k string) bool { return strings.Contains(k, bad) || len(got[k]) == 0 })
	if fl := testutil.ToFloat64(e.m.failed); fl != float64(refused) || refused == 0 {
		t.Errorf("samples_failed_total %v, want %d (> 0)", fl, refused)
	}
	if r := testutil.ToFloat64(e.m.retried); r != 0 {
		t.Errorf("a refused batch was retried (%v samples)", r)
	}
}

// TestExporterResumesMidWindow: kubemon stops while a window is half sent;
// the next run on the same position file sends only the rest: every sample
// exactly once over both runs.
func TestExporterResumesMidWindow(t *testing.T) {
	f, dir := behind(t, 30, 4*time.Minute, 10*time.Second)
	w := &recorder{}
	stop := make(chan struct{})
	var once sync.Once
	w.fail = func(call int, _ []Series) error {
		if call > 5 {
			once.Do(func() { close(stop) })
			return Retryable(errors.New("connection refused"), 0)
		}
		return nil
	}
	o := opts(dir, w, f.st)
	o.MaxWindow = 10 * time.Minute // one window, many batches
	e, err := NewExporter(o)
	if err != nil {
		t.Fatal(err)
	}
	runUntil(t, e, func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	})
	st := e.pos.get()
	if st.Acked == nil || st.From == 0 {
		t.Fatalf("the position file does not hold the half-sent window: %+v", st)
	}
	acked := 0
	for _, a := range st.Acked {
		acked += a
	}
	if acked == 0 {
		t.Fatalf("no batch acknowledged in the position: %+v", st)
	}

	// What the first run delivered of the half-sent window.
	w.mu.Lock()
	w.fail = nil
	sentBefore := 0
	for _, ss := range w.got {
		for _, x := range ss {
			if x.T > st.From && x.T <= st.To {
				sentBefore++
			}
		}
	}
	w.mu.Unlock()
	obs := &observer{recorder: w}
	o.Writer = obs
	e2, err := NewExporter(o)
	if err != nil {
		t.Fatal(err)
	}
	runUntil(t, e2, caughtUp(e2, f.end))
	f.check(t, w.got, nil)
	// The batches delivered before the restart were shown to the writer
	// (sink.Observer), not written again.
	if !(sentBefore > 0 && obs.observed == sentBefore) {
		t.Errorf("the second run observed %d samples, want the %d (> 0) the first run delivered of its window", obs.observed, sentBefore)
	}
}

// observer is a recorder that is also a sink.Observer.
type observer struct {
	*recorder
	observed int // samples
}

func (o *observer) Observe(b []Series) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range b {
		o.observed += len(s.Samples)
	}
}

// TestExporterBudget: a sink further behind than MaxLag skips the oldest
// data, counts the skipped samples and sends the rest.
func TestExporterBudget(t *testing.T) {
	f, dir := behind(t, 10, 10*time.Minute, 30*time.Second)
	w := &recorder{}
	o := opts(dir, w, f.st)
	o.MaxLag = 4 * time.Minute
	// The clock moves on while the skipped samples are counted, as on a
	// busy machine: the sink must still send after skipping.
	o.Now = ticking(time.Now(), 10*time.Millisecond)
	e, err := NewExporter(o)
	if err != nil {
		t.Fatal(err)
	}
	runUntil(t, e, caughtUp(e, f.end))
	delivered := 0
	for _, s := range w.got {
		delivered += len(s)
		for _, x := range s {
			if x.T < f.end.Add(-o.MaxLag-time.Minute).UnixMilli() {
				t.Fatalf("a sample %v older than the budget was sent", time.UnixMilli(x.T))
			}
		}
	}
	total := 0
	for _, s := range f.want {
		total += len(s)
	}
	dropped := int(testutil.ToFloat64(e.m.dropped))
	if dropped == 0 || delivered == 0 || dropped+delivered != total {
		t.Errorf("dropped %d + delivered %d, want > 0 each and %d in all", dropped, delivered, total)
	}
}

// TestExporterStoreRetention: while the sink was down, the store's
// retention deleted its oldest blocks; the sink moves past the deleted
// range, counts its samples as dropped (an estimate) and delivers the rest,
// every sample once.
func TestExporterStoreRetention(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	dataDir := t.TempDir()
	st, err := store.Open(store.Options{Dir: dataDir, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	start := now.Add(-10 * time.Hour)
	step := 30 * time.Second
	const n = 20
	total := 0
	app := st.DB().Appender(context.Background())
	for ts := start; ts.Before(now); ts = ts.Add(step) {
		for i := range n {
			ls := labels.FromStrings(labels.MetricName, "container_memory_working_set_bytes", "pod", fmt.Sprintf("p%02d", i))
			if _, err := app.Append(0, ls, ts.UnixMilli(), float64(i)); err != nil {
				t.Fatal(err)
			}
			total++
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	// Compaction cuts the head into blocks; the retention then deletes
	// those older than an hour before the newest.
	if err := st.DB().Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	metas := st.DB().BlockMetas()
	if len(metas) == 0 || metas[0].MinTime <= start.UnixMilli() {
		t.Fatalf("retention deleted no block (%d blocks)", len(metas))
	}
	kept := 0
	q, err := st.Queryable().Querier(0, now.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+"))
	for ss.Next() {
		it := ss.At().Iterator(nil)
		for it.Next() != chunkenc.ValNone {
			kept++
		}
	}
	q.Close()
	lost := total - kept
	if kept == 0 || lost == 0 {
		t.Fatalf("%d samples kept and %d deleted, want some of each", kept, lost)
	}

	dir := t.TempDir()
	startAt(t, dir, "test", start.Add(-time.Second))
	w := &recorder{}
	o := opts(dir, w, st)
	o.BatchSize = 50
	e, err := NewExporter(o)
	if err != nil {
		t.Fatal(err)
	}
	runUntil(t, e, caughtUp(e, now.Add(-step)))
	delivered := 0
	for k, s := range w.got {
		delivered += len(s)
		for i := 1; i < len(s); i++ {
			if s[i].T <= s[i-1].T {
				t.Fatalf("%s: sample %d at %v not after the one before", k, i, time.UnixMilli(s[i].T))
			}
		}
	}
	if delivered != kept {
		t.Errorf("%d samples delivered, want the %d the store kept", delivered, kept)
	}
	dropped := testutil.ToFloat64(e.m.dropped)
	if !(math.Abs(dropped-float64(lost)) <= 0.05*float64(lost)) {
		t.Errorf("samples_dropped_total %v, want the %d the retention deleted (±5 %%)", dropped, lost)
	}
}

// ticking is a clock that starts at start and moves by step each time it
// is read.
func ticking(start time.Time, step time.Duration) func() time.Time {
	var mu sync.Mutex
	now := start
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(step)
		return now
	}
}

// TestExporterInfoSeriesFirst: in every window the info series reach the
// sink before any other series, over several shards and however slowly the
// info batches are written (InfluxDB's writer takes the pods' labels from
// them).
func TestExporterInfoSeriesFirst(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	app := st.DB().Appender(context.Background())
	start := now.Add(-3 * time.Minute)
	infos, others := 0, 0
	for ts := start; ts.Before(now); ts = ts.Add(15 * time.Second) {
		for i := range 20 {
			pod := fmt.Sprintf("p%02d", i)
			// Sorted by name, the container series come before the
			// pod info series.
			for _, ls := range []labels.Labels{
				labels.FromStrings(labels.MetricName, "container_cpu_usage_cores", "namespace", "ns", "pod", pod, "container", "c"),
				labels.FromStrings(labels.MetricName, "pod_info", "namespace", "ns", "pod", pod, "labels", "app:x"),
			} {
				if _, err := app.Append(0, ls, ts.UnixMilli(), 1); err != nil {
					t.Fatal(err)
				}
			}
			infos++
			others++
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	startAt(t, dir, "test", start.Add(-time.Second))

	type write struct{ info, other int }
	var mu sync.Mutex
	var log []write // per window, in the order the writes completed
	w := &recorder{fail: func(_ int, b []Series) error {
		var c write
		for _, s := range b {
			if strings.HasSuffix(s.Labels.Get(labels.MetricName), "_info") {
				c.info += len(s.Samples)
			} else {
				c.other += len(s.Samples)
			}
		}
		if c.info > 0 {
			time.Sleep(20 * time.Millisecond) // a slow write
		}
		mu.Lock()
		log = append(log, c)
		mu.Unlock()
		return nil
	}}
	o := opts(dir, w, st)
	o.MaxWindow = 10 * time.Minute // one window
	o.BatchSize = 7
	e, err := NewExporter(o)
	if err != nil {
		t.Fatal(err)
	}
	runUntil(t, e, caughtUp(e, now.Add(-15*time.Second)))
	gotInfo, gotOther := 0, 0
	for i, c := range log {
		gotInfo += c.info
		gotOther += c.other
		if c.info > 0 && gotOther > c.other {
			t.Fatalf("write %d carries info samples after %d samples of other series were written", i, gotOther-c.other)
		}
	}
	if gotInfo != infos || gotOther != others {
		t.Fatalf("%d info and %d other samples written, want %d and %d", gotInfo, gotOther, infos, others)
	}
}

// TestExporterLagWhileRetrying: while a sink is down, its lag and pending
// gauges keep growing (they are not only updated between windows).
func TestExporterLagWhileRetrying(t *testing.T) {
	f, dir := behind(t, 5, time.Minute, 15*time.Second)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	w := &recorder{fail: func(int, []Series) error { return Retryable(errors.New("connection refused"), 0) }}
	o := opts(dir, w, f.st)
	o.Now = clock
	e, err := NewExporter(o)
	if err != nil {
		t.Fatal(err)
	}
	calls := func() int { w.mu.Lock(); defer w.mu.Unlock(); return w.calls }
	var before float64
	advanced := 0
	runUntil(t, e, func() bool {
		switch {
		case advanced == 0 && calls() >= 3:
			before = testutil.ToFloat64(e.m.lag)
			mu.Lock()
			now = now.Add(10 * time.Minute) // the outage goes on
			mu.Unlock()
			advanced = calls()
		case advanced > 0 && calls() >= advanced+3:
			return true
		}
		return false
	})
	if !(before < 5*60) {
		t.Fatalf("lag %v s before the clock moved, want under 5 minutes", before)
	}
	// Less a microsecond: the two lags are differences of float seconds
	// (CI once saw 661.831584706 against 661.8315847060001).
	if lag := testutil.ToFloat64(e.m.lag); !(lag >= before+10*60-1e-6) {
		t.Errorf("lag %v s 10 minutes into the outage, want at least %v s", lag, before+10*60)
	}
}

// TestExporterNewSinkStartsAtPresent: a sink without a position does not
// send the history stored before it was configured.
func TestExporterNewSinkStartsAtPresent(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	f := newFixture(t, 5, now.Add(-5*time.Minute), now.Add(-time.Minute), 30*time.Second)
	w := &recorder{}
	e, err := NewExporter(opts(t.TempDir(), w, f.st))
	if err != nil {
		t.Fatal(err)
	}
	runUntil(t, e, func() bool { return e.pos.get().To > 0 })
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.got) != 0 {
		t.Errorf("a new sink sent %d series of old history", len(w.got))
	}
	if p := e.pos.get().To; p < f.end.UnixMilli() {
		t.Errorf("a new sink starts at %v, before the newest stored sample %v", time.UnixMilli(p), f.end)
	}
}

func TestPositionFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := openPosition(dir, "../x"); err == nil {
		t.Error("a name with a path separator must be refused")
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.position.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openPosition(dir, "bad"); err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Errorf("corrupt position: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "odd.position.json"), []byte(`{"from":5,"to":1,"shards":1,"acked":[0]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openPosition(dir, "odd"); err == nil {
		t.Error("inconsistent position accepted")
	}
}
