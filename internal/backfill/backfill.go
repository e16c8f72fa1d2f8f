// Package backfill fills a kubemon data directory with the history the
// simulator (internal/sim) would have produced over a past time range, as
// if `kubemon demo` had been watching it all along: the same kubelet
// payloads, read by the same scrape client, through the same pipeline
// (rates, container → pod → node → namespace/workload/cluster roll-ups,
// staleness markers for vanished objects), giving the same series, labels
// and values the live store holds. Instead of waiting for the clock, each
// 2-hour block is computed on a simulated clock and written directly as a
// TSDB block (a head of its own, without a WAL, compacted as the store's
// head would be), several blocks at once.
//
// Afterwards `kubemon demo --data-dir DIR` with the same simulator options
// opens the blocks and continues live from the present. The simulator
// anchors its nodes' boot times (and, in constant mode, its pods' start
// times) at its creation: the backfill creates its simulators at the
// history's start, so the nodes are up throughout it, and the demo's
// simulator, created later, boots them anew. Where the history meets the
// live data the node and system-container counters therefore start over
// (a reboot, which the rates handle as live), as do constant mode's pods;
// realistic mode's pods, whose lifetimes are pure functions of time,
// continue with the same names and counters.
package backfill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/fileutil"
	"golang.org/x/sync/errgroup"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/sim"
	"github.com/kubemon/kubemon/internal/store"
)

// blockDuration is the range of each block written: the store's, on its grid.
const blockDuration = store.BlockDuration

// Defaults.
const (
	// DefaultInterval is `kubemon demo`'s interval.
	DefaultInterval = 10 * time.Second
	// DefaultDuration is how much history is written when Options.Duration is 0.
	DefaultDuration = 24 * time.Hour
	// DefaultProgressEvery is the spacing of progress log lines.
	DefaultProgressEvery = 10 * time.Second
)

// Options configure a backfill. Zero values take the defaults noted.
type Options struct {
	// Dir is the data directory the blocks are written to (the store's
	// --data-dir); required. It must not exist, be empty, or hold only
	// blocks none of which overlaps the range (an earlier backfill's); a
	// store that was run live (it has a write-ahead log) is refused.
	Dir string

	// The simulated cluster, as sim.Options and `kubemon demo`'s flags
	// describe it: Nodes (default 3), PodsPerNode (default 10),
	// ContainersPerPod (default 2), Seed (default 1) and Mode (default
	// sim.ModeRealistic: usage varies with time, pods churn, ~5 % of
	// containers restart; sim.ModeConstant: fixed, known usage). Zero values
	// take the simulator's defaults, which are demo's.
	Nodes            int
	PodsPerNode      int
	ContainersPerPod int
	Seed             int64
	Mode             sim.Mode

	// End is the end of the history (exclusive), truncated to a multiple
	// of Interval as kubemon's cycles are; default: now. It must not be in
	// the future. The last block ends at End, so a store opened afterwards
	// accepts samples from End on.
	End time.Time
	// Duration is how much history is written, ending at End; default
	// 24 h. It must be a whole number of intervals.
	Duration time.Duration
	// Interval is the spacing of the samples: the scrape interval and
	// cycle length; default 10 s, `kubemon demo`'s. From 1 s to 1 h, as
	// the store's configuration allows.
	Interval time.Duration
	// Drop lists series not to store, as Prometheus names with shell
	// wildcards (store.Options.Drop, --metrics-drop).
	Drop []string

	// Workers is how many parts of the range are built at once, each a run
	// of consecutive blocks built one after the other; each worker uses
	// about one core and holds one block's TSDB head in memory (a couple
	// of KB a series, plus its samples). Default: GOMAXPROCS.
	Workers int
	// ProgressEvery is the spacing of the progress log lines; default 10 s.
	ProgressEvery time.Duration
	// Logger receives progress and the summary; default: discard.
	Logger *slog.Logger
	// Now is the wall clock (End's default); default time.Now.
	Now func() time.Time
}

// Range is the time range a backfill with these options writes: [Start,
// End), End truncated to the interval. It applies the defaults.
func (o Options) Range() (start, end time.Time) {
	o.defaults()
	return o.End.Add(-o.Duration), o.End
}

func (o *Options) defaults() {
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.Duration == 0 {
		o.Duration = DefaultDuration
	}
	if o.Workers == 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.ProgressEvery == 0 {
		o.ProgressEvery = DefaultProgressEvery
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.End.IsZero() {
		o.End = o.Now()
	}
	if o.Interval > 0 {
		o.End = o.End.Truncate(o.Interval)
	}
	// The simulator's defaults (sim.New's), spelled out for the log.
	d := sim.Options{Nodes: o.Nodes, PodsPerNode: o.PodsPerNode, ContainersPerPod: o.ContainersPerPod, Seed: o.Seed, Mode: o.Mode}.WithDefaults()
	o.Nodes, o.PodsPerNode, o.ContainersPerPod, o.Seed, o.Mode = d.Nodes, d.PodsPerNode, d.ContainersPerPod, d.Seed, d.Mode
}

// Validate reports every problem of the options (after defaults).
func (o Options) Validate() error {
	o.defaults()
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if o.Dir == "" {
		bad("data directory (--data-dir): must be set")
	}
	if o.Interval < time.Second || o.Interval > time.Hour {
		bad("interval %s: want 1s to 1h", o.Interval)
	}
	switch {
	case o.Duration < 0:
		bad("duration %s: must be positive", o.Duration)
	case o.Interval > 0 && o.Duration < o.Interval:
		bad("duration %s: want at least one interval (%s)", o.Duration, o.Interval)
	case o.Interval > 0 && o.Duration%o.Interval != 0:
		bad("duration %s: want a whole number of intervals (%s)", o.Duration, o.Interval)
	}
	if now := o.Now(); o.End.After(now) {
		bad("end %s: in the future (now %s); history can only be written for the past", o.End.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if o.Nodes < 0 {
		bad("nodes %d: must be at least 1", o.Nodes)
	}
	if o.PodsPerNode < 0 {
		bad("pods per node %d: must not be negative", o.PodsPerNode)
	}
	if o.ContainersPerPod < 0 {
		bad("containers per pod %d: must be at least 1", o.ContainersPerPod)
	}
	modeOK := o.Mode == sim.ModeRealistic || o.Mode == sim.ModeConstant
	if !modeOK {
		bad("sim mode %q: want %q or %q", o.Mode, sim.ModeRealistic, sim.ModeConstant)
	}
	if o.Workers < 1 {
		bad("workers %d: must be at least 1", o.Workers)
	}
	if o.ProgressEvery < 0 {
		bad("progress interval %s: must not be negative", o.ProgressEvery)
	}
	if modeOK && o.Nodes >= 0 && o.PodsPerNode >= 0 && o.ContainersPerPod >= 0 {
		// The simulator's own limits (nodes × pods, ...).
		if _, err := sim.New(sim.Options{Nodes: o.Nodes, PodsPerNode: o.PodsPerNode, ContainersPerPod: o.ContainersPerPod,
			Seed: o.Seed, Mode: o.Mode, Now: func() time.Time { return o.End }}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// block is one block to write: [mint, maxt) in Unix ms.
type block struct{ mint, maxt int64 }

// plan cuts [start, end) at every multiple of the block duration.
func plan(start, end time.Time) []block {
	var out []block
	for _, r := range store.BlockRanges(start.UnixMilli(), end.UnixMilli()) {
		out = append(out, block{r[0], r[1]})
	}
	return out
}

// progress counts the work done, for the log.
type progress struct {
	cycles, scrapes, samples, blocks atomic.Int64
	series                           atomic.Int64 // of the blocks written
}

// Run writes the history the options describe into o.Dir. It returns once
// every block is in place; on an error or when ctx ends, it removes what it
// wrote and leaves o.Dir as it found it.
func Run(ctx context.Context, o Options) (err error) {
	o.defaults()
	if err := o.Validate(); err != nil {
		return fmt.Errorf("backfill: %w", err)
	}
	log := o.Logger
	start, end := o.End.Add(-o.Duration), o.End
	created := false
	if _, err := os.Stat(o.Dir); errors.Is(err, os.ErrNotExist) {
		created = true
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return fmt.Errorf("backfill: %w", err)
	}
	unlock, err := lockDir(o.Dir)
	if err != nil {
		return err
	}
	defer func() {
		unlock()
		if created && err != nil {
			_ = os.Remove(o.Dir) // empty: the staging directory is gone
		}
	}()
	if err := checkDir(o.Dir, start, end); err != nil {
		return err
	}
	staging, err := os.MkdirTemp(o.Dir, ".backfill-")
	if err != nil {
		return fmt.Errorf("backfill: %w", err)
	}
	defer os.RemoveAll(staging)

	blocks := plan(start, end)
	workers := min(o.Workers, len(blocks))
	totalCycles := int64(o.Duration/o.Interval) + 2*int64(workers)
	log.Info("backfill starting", "dir", o.Dir, "start", start.UTC().Format(time.RFC3339), "end", end.UTC().Format(time.RFC3339),
		"interval", o.Interval, "blocks", len(blocks), "nodes", o.Nodes, "podsPerNode", o.PodsPerNode,
		"containersPerPod", o.ContainersPerPod, "mode", string(o.Mode), "seed", o.Seed, "workers", workers)

	var p progress
	began := time.Now()
	stopLog := make(chan struct{})
	var logWG sync.WaitGroup
	if o.ProgressEvery > 0 {
		logWG.Add(1)
		go func() {
			defer logWG.Done()
			t := time.NewTicker(o.ProgressEvery)
			defer t.Stop()
			for {
				select {
				case <-stopLog:
					return
				case <-t.C:
					logProgress(log, &p, began, len(blocks), totalCycles)
				}
			}
		}()
	}

	var (
		mu      sync.Mutex
		written []string
	)
	g, gctx := errgroup.WithContext(ctx) // the first failure stops the other workers
	for _, run := range split(blocks, workers) {
		g.Go(func() error {
			ids, err := buildRun(gctx, &o, start, run, staging, &p, slog.New(slog.DiscardHandler))
			mu.Lock()
			written = append(written, ids...)
			mu.Unlock()
			return err
		})
	}
	firstErr := g.Wait()
	close(stopLog)
	logWG.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = fmt.Errorf("backfill: %w", context.Cause(ctx))
	}
	if firstErr != nil {
		log.Warn("backfill stopped; nothing was added to the data directory", "err", firstErr, "blocksDone", p.blocks.Load(), "blocks", len(blocks))
		return firstErr
	}
	// Nothing may have appeared in the range meanwhile (the directory is
	// locked, but check as the last step before the blocks go in).
	if err := checkDir(o.Dir, start, end); err != nil {
		return err
	}
	slices.Sort(written)
	for _, id := range written {
		if err := os.Rename(filepath.Join(staging, id), filepath.Join(o.Dir, id)); err != nil {
			for _, done := range written {
				_ = os.RemoveAll(filepath.Join(o.Dir, done))
			}
			return fmt.Errorf("backfill: moving block %s into %s: %w", id, o.Dir, err)
		}
	}
	elapsed := time.Since(began)
	size, _ := dirSize(o.Dir, written)
	log.Info("backfill done", "dir", o.Dir, "blocks", len(written), "samples", p.samples.Load(), "series", p.series.Load(),
		"elapsed", elapsed.Round(time.Millisecond), "samplesPerSecond", rate(p.samples.Load(), elapsed), "bytes", size,
		"next", fmt.Sprintf("kubemon demo --data-dir %s --nodes %d --pods-per-node %d --containers-per-pod %d --seed %d --sim-mode %s",
			o.Dir, o.Nodes, o.PodsPerNode, o.ContainersPerPod, o.Seed, o.Mode))
	return nil
}

func rate(n int64, d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(float64(n) / d.Seconds())
}

func logProgress(log *slog.Logger, p *progress, began time.Time, blocks int, totalCycles int64) {
	elapsed := time.Since(began)
	done := p.cycles.Load()
	var eta time.Duration
	if done > 0 {
		eta = time.Duration(float64(elapsed) * float64(totalCycles-done) / float64(done)).Round(time.Second)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	log.Info("backfill progress", "blocks", fmt.Sprintf("%d/%d", p.blocks.Load(), blocks),
		"percent", math.Round(1000*float64(done)/float64(max(totalCycles, 1)))/10,
		"samples", p.samples.Load(), "samplesPerSecond", rate(p.samples.Load(), elapsed),
		"elapsed", elapsed.Round(time.Second), "eta", eta, "heapMiB", ms.HeapInuse>>20)
}

// buildRun runs the pipeline over a run of consecutive blocks, from two
// intervals before the first (so that its first samples have rates, and
// objects that vanish at its start get their staleness markers, as live),
// and writes each block into dir once the pipeline is past its end. It
// returns the blocks' directory names.
func buildRun(ctx context.Context, o *Options, epoch time.Time, run []block, dir string, p *progress, log *slog.Logger) ([]string, error) {
	// The simulator anchors its nodes' boot times at its creation: every
	// run's simulator is created at the history's start, so all runs show
	// one cluster whose nodes were up before the history began.
	src, err := newSource(o, epoch)
	if err != nil {
		return nil, err
	}
	w := newWriter(run, dir, store.DropTable(o.Drop), run[0].mint == epoch.UnixMilli())
	defer w.close()
	var emitErr error
	src.emit = func(ctx context.Context, batch *model.Batch) {
		before := w.samples
		if err := w.append(ctx, batch); err != nil && emitErr == nil {
			emitErr = err
		}
		p.samples.Add(w.samples - before)
	}
	var ids []string
	iv := o.Interval
	// Cycle e scrapes every node in [e-iv, e) and rolls up at e.
	last := run[len(run)-1].maxt
	for e := time.UnixMilli(run[0].mint).Truncate(iv).Add(-iv); e.Add(-iv).UnixMilli() < last; e = e.Add(iv) {
		n, err := src.cycle(ctx, e)
		p.scrapes.Add(int64(n))
		p.cycles.Add(1)
		if err != nil {
			return ids, err
		}
		if emitErr != nil {
			return ids, emitErr
		}
		if w.rejected > 0 {
			return ids, fmt.Errorf("backfill: the head refused %d samples (out of order or duplicate) by %s", w.rejected, e.UTC().Format(time.RFC3339))
		}
		done, series, err := w.done(ctx, e.UnixMilli(), dir, log)
		ids = append(ids, done...)
		p.blocks.Add(int64(len(done)))
		p.series.Add(int64(series))
		if err != nil {
			return ids, err
		}
	}
	done, series, err := w.done(ctx, math.MaxInt64, dir, log)
	p.blocks.Add(int64(len(done)))
	p.series.Add(int64(series))
	return append(ids, done...), err
}

// split cuts blocks into n runs of consecutive blocks, as even as can be.
func split(blocks []block, n int) [][]block {
	var runs [][]block
	for i := range n {
		lo, hi := i*len(blocks)/n, (i+1)*len(blocks)/n
		if hi > lo {
			runs = append(runs, blocks[lo:hi])
		}
	}
	return runs
}

// lockDir takes the TSDB's lock on dir, so that no kubemon opens the
// store while blocks are being added (and none is running on it now).
func lockDir(dir string) (func(), error) {
	name := filepath.Join(dir, "lock")
	r, existed, err := fileutil.Flock(name)
	if err != nil {
		return nil, fmt.Errorf("backfill: %s is in use (is a kubemon running on it?): %w", dir, err)
	}
	return func() {
		_ = r.Release()
		if !existed {
			_ = os.Remove(name)
		}
	}, nil
}

// checkDir refuses a data directory whose contents the backfill could
// conflict with: a live store's write-ahead log or head chunks (data not in
// blocks, whose time range is unknown without replaying it), or blocks that
// overlap [start, end).
func checkDir(dir string, start, end time.Time) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("backfill: %w", err)
	}
	var overlapping []string
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == "wal" || name == "chunks_head":
			if n, _ := dirSize(filepath.Join(dir, name), nil); n > 0 {
				return fmt.Errorf("backfill: %s holds a store that kubemon has run on (%s/ is not empty: data not yet in blocks, over a time "+
					"range unknown without replaying it); backfill into a new or empty directory, or one holding only blocks from earlier backfills", dir, name)
			}
		case e.IsDir() && len(name) == 26 && !strings.HasPrefix(name, "."):
			raw, err := os.ReadFile(filepath.Join(dir, name, "meta.json"))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("backfill: %w", err)
			}
			var m tsdb.BlockMeta
			if err := json.Unmarshal(raw, &m); err != nil {
				return fmt.Errorf("backfill: block %s: meta.json: %w", name, err)
			}
			if m.MinTime < end.UnixMilli() && start.UnixMilli() < m.MaxTime {
				overlapping = append(overlapping, fmt.Sprintf("%s [%s, %s)", name, msTime(m.MinTime), msTime(m.MaxTime)))
			}
		}
	}
	if len(overlapping) > 0 {
		return fmt.Errorf("backfill: %s already holds blocks in [%s, %s): %s; nothing is overwritten: choose another directory, "+
			"or a range (--end, --duration) outside them", dir, start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339), strings.Join(overlapping, ", "))
	}
	return nil
}

// dirSize is the total size of the files under dir, or under only the
// named subdirectories when names is not nil.
func dirSize(dir string, names []string) (int64, error) {
	roots := []string{dir}
	if names != nil {
		roots = roots[:0]
		for _, n := range names {
			roots = append(roots, filepath.Join(dir, n))
		}
	}
	var total int64
	for _, root := range roots {
		err := filepath.WalkDir(root, func(_ string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() {
				if fi, err := d.Info(); err == nil {
					total += fi.Size()
				}
			}
			return nil
		})
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
