package enginebench

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	vmprompb "github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"
	vmstorage "github.com/VictoriaMetrics/VictoriaMetrics/lib/storage"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/kubemon/kubemon/internal/store"
)

// An engine is one storage engine behind the benchmark's common calls.
type engine interface {
	// appendNode appends cycle c's samples of series [lo, hi), vals: one
	// node's batch, as kubemon appends a node's scrape.
	appendNode(w *Workload, lo, hi, c int, vals []float64) error
	// flush makes everything appended visible to reads.
	flush() error
	// settle waits for the engine's background work after a flush (data
	// moved out of memory), so memory is measured in its steady state.
	settle()
	// read calls fn for each series matching eqs (label name → value;
	// "__name__" for the name) with its samples in [mint, maxt]. The
	// slices are reused after fn returns.
	read(ctx context.Context, mint, maxt int64, eqs []eq, fn func(get func(string) string, ts []int64, vs []float64)) error
	// persist writes everything to its on-disk form (the TSDB: the head
	// compacted into a block; VM: all parts merged and flushed) and
	// returns its size; reads work afterwards.
	persist() (disk, error)
	// stats are engine-specific counters for the report.
	stats() map[string]float64
	close() error
}

type eq struct{ name, value string }

// disk is an engine's persisted size in bytes.
type disk struct {
	total int64 // everything the data needs (not caches)
	index int64 // the series index part of total
	wal   int64 // the write-ahead log before it was compacted away (TSDB)
}

// --- Prometheus TSDB, opened as kubemon opens it --------------------------

type tsdbEngine struct {
	st   *store.Store
	db   *tsdb.DB
	refs []storage.SeriesRef
	sb   labels.ScratchBuilder
	it   chunkenc.Iterator
	ts   []int64
	vs   []float64
}

// openTSDB opens the TSDB through store.Open, kubemon's own options (WAL
// compression, retention, block ranges), and appends through its appender
// with cached series references, as store.Store does.
func openTSDB(dir string, series int) (engine, error) {
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		return nil, err
	}
	return &tsdbEngine{st: st, db: st.DB(), refs: make([]storage.SeriesRef, series)}, nil
}

func (e *tsdbEngine) appendNode(w *Workload, lo, hi, c int, vals []float64) error {
	app := e.db.Appender(context.Background())
	t := w.Time(c)
	for i := lo; i < hi; i++ {
		l := labels.EmptyLabels()
		if e.refs[i] == 0 {
			s := w.Series(i)
			e.sb.Reset()
			e.sb.Add(labels.MetricName, s.Name)
			e.sb.Add(LabelContainer, s.Container)
			e.sb.Add(LabelNamespace, s.Namespace)
			e.sb.Add(LabelNode, s.Node)
			e.sb.Add(LabelPod, s.Pod)
			l = e.sb.Labels()
		}
		ref, err := app.Append(e.refs[i], l, t, vals[i-lo])
		if err != nil {
			_ = app.Rollback()
			return fmt.Errorf("append series %d cycle %d: %w", i, c, err)
		}
		e.refs[i] = ref
	}
	return app.Commit()
}

func (e *tsdbEngine) flush() error { return nil }

// settle moves the head's full chunks out of the heap into its
// memory-mapped chunk files, as the TSDB does in the background every
// minute.
func (e *tsdbEngine) settle() { e.db.ForceHeadMMap() }

func (e *tsdbEngine) read(ctx context.Context, mint, maxt int64, eqs []eq, fn func(get func(string) string, ts []int64, vs []float64)) error {
	q, err := e.db.Querier(mint, maxt)
	if err != nil {
		return err
	}
	defer q.Close()
	ms := make([]*labels.Matcher, len(eqs))
	for i, m := range eqs {
		ms[i] = labels.MustNewMatcher(labels.MatchEqual, m.name, m.value)
	}
	ss := q.Select(ctx, false, nil, ms...)
	for ss.Next() {
		s := ss.At()
		e.it = s.Iterator(e.it)
		e.ts, e.vs = e.ts[:0], e.vs[:0]
		for vt := e.it.Next(); vt != chunkenc.ValNone; vt = e.it.Next() {
			if vt != chunkenc.ValFloat {
				return fmt.Errorf("unexpected sample type %s", vt)
			}
			t, v := e.it.At()
			e.ts = append(e.ts, t)
			e.vs = append(e.vs, v)
		}
		if err := e.it.Err(); err != nil {
			return err
		}
		fn(s.Labels().Get, e.ts, e.vs)
	}
	return ss.Err()
}

func (e *tsdbEngine) persist() (disk, error) {
	var d disk
	d.wal = dirSize(filepath.Join(e.db.Dir(), "wal"), nil)
	h := e.db.Head()
	if err := e.db.CompactHead(tsdb.NewRangeHead(h, h.MinTime(), h.MaxTime())); err != nil {
		return d, err
	}
	for _, b := range e.db.Blocks() {
		d.total += b.Size()
		if fi, err := os.Stat(filepath.Join(b.Dir(), "index")); err == nil {
			d.index += fi.Size()
		}
	}
	return d, nil
}

func (e *tsdbEngine) stats() map[string]float64 {
	return map[string]float64{"head-series": float64(e.db.Head().NumSeries())}
}

func (e *tsdbEngine) close() error { return e.st.Close() }

// --- VictoriaMetrics' storage as a library --------------------------------

type vmEngine struct {
	dir  string
	s    *vmstorage.Storage
	mrs  []vmstorage.MetricRow
	buf  []byte
	ends []int
	lbls [5]vmprompb.Label
	blk  vmstorage.Block
	mn   vmstorage.MetricName
	ts   []int64
	vs   []float64
}

// vmPrecisionBits keeps values whole, as vmstorage's -precisionBits
// default.
const vmPrecisionBits = 64

var vmOnce sync.Once

// vmSetup sets VictoriaMetrics' process-wide flags once: quiet logs, and
// the memory its caches are sized from (-memory.allowedBytes) when
// KUBEMON_ENGINEBENCH_VM_MEMORY is set (e.g. "256MiB"); by default they are
// sized from 60 % of the machine's memory (-memory.allowedPercent).
func vmSetup() {
	vmOnce.Do(func() {
		if err := flag.Set("loggerLevel", "ERROR"); err != nil {
			panic(err)
		}
		if m := os.Getenv("KUBEMON_ENGINEBENCH_VM_MEMORY"); m != "" {
			if err := flag.Set("memory.allowedBytes", m); err != nil {
				panic(fmt.Sprintf("KUBEMON_ENGINEBENCH_VM_MEMORY=%q: %v", m, err))
			}
		}
	})
}

// vmRetention is kubemon's default retention.
const vmRetention = 15 * 24 * time.Hour

func openVM(dir string, _ int) (engine, error) {
	vmSetup()
	return &vmEngine{dir: dir, s: vmstorage.MustOpenStorage(dir, vmstorage.OpenOptions{Retention: vmRetention})}, nil
}

// appendNode builds each row's raw metric name (kubemon would build it
// from the object's labels every time: VM has no series references to
// keep) and adds the node's rows in one call.
func (e *vmEngine) appendNode(w *Workload, lo, hi, c int, vals []float64) error {
	e.buf, e.ends, e.mrs = e.buf[:0], e.ends[:0], e.mrs[:0]
	for i := lo; i < hi; i++ {
		s := w.Series(i)
		e.lbls = [5]vmprompb.Label{
			{Name: "", Value: s.Name},
			{Name: LabelContainer, Value: s.Container},
			{Name: LabelNamespace, Value: s.Namespace},
			{Name: LabelNode, Value: s.Node},
			{Name: LabelPod, Value: s.Pod},
		}
		e.buf = vmstorage.MarshalMetricNameRaw(e.buf, e.lbls[:])
		e.ends = append(e.ends, len(e.buf))
	}
	t := w.Time(c)
	start := 0
	for k, end := range e.ends {
		e.mrs = append(e.mrs, vmstorage.MetricRow{MetricNameRaw: e.buf[start:end], Timestamp: t, Value: vals[k]})
		start = end
	}
	e.s.AddRows(e.mrs, vmPrecisionBits)
	return nil
}

func (e *vmEngine) flush() error {
	e.s.DebugFlush()
	return nil
}

// settle waits for the in-memory parts to go to disk (they are flushed
// every 5 s, lib/storage's dataFlushInterval).
func (e *vmEngine) settle() { time.Sleep(6 * time.Second) }

func (e *vmEngine) read(_ context.Context, mint, maxt int64, eqs []eq, fn func(get func(string) string, ts []int64, vs []float64)) error {
	tfs := vmstorage.NewTagFilters()
	for _, m := range eqs {
		var key []byte
		if m.name != labels.MetricName {
			key = []byte(m.name)
		}
		if err := tfs.Add(key, []byte(m.value), false, false); err != nil {
			return err
		}
	}
	tr := vmstorage.TimeRange{MinTimestamp: mint, MaxTimestamp: maxt}
	var sr vmstorage.Search
	deadline := uint64(time.Now().Add(time.Minute).Unix())
	sr.Init(nil, e.s, []*vmstorage.TagFilters{tfs}, tr, 1e9, deadline)
	defer sr.MustClose()
	var cur []byte
	emit := func() error {
		if cur == nil {
			return nil
		}
		if err := e.mn.Unmarshal(cur); err != nil {
			return err
		}
		fn(e.get, e.ts, e.vs)
		return nil
	}
	// Blocks come sorted by series then time: a series' blocks are
	// consecutive.
	for sr.NextMetricBlock() {
		mbr := &sr.MetricBlockRef
		if cur == nil || !bytes.Equal(mbr.MetricName, cur) {
			if err := emit(); err != nil {
				return err
			}
			cur = append(cur[:0], mbr.MetricName...)
			e.ts, e.vs = e.ts[:0], e.vs[:0]
		}
		mbr.BlockRef.MustReadBlock(&e.blk)
		if err := e.blk.UnmarshalData(); err != nil {
			return err
		}
		e.ts, e.vs = e.blk.AppendRowsWithTimeRangeFilter(e.ts, e.vs, tr)
	}
	if err := sr.Error(); err != nil {
		return err
	}
	return emit()
}

func (e *vmEngine) get(name string) string {
	if name == labels.MetricName {
		return string(e.mn.MetricGroup)
	}
	return string(e.mn.GetTagValue(name))
}

func (e *vmEngine) metrics() *vmstorage.Metrics {
	var m vmstorage.Metrics
	e.s.UpdateMetrics(&m)
	return &m
}

// persist merges every part of the data into one on disk (a force merge,
// retried while background merges hold parts), closes the storage so its
// in-memory index parts are written too, measures the data and index
// directories (not the caches VM saves beside them), and opens it again.
func (e *vmEngine) persist() (disk, error) {
	var d disk
	deadline := time.Now().Add(5 * time.Minute)
	for {
		e.s.DebugFlush()
		if err := e.s.ForceMergePartitions(""); err != nil {
			return d, err
		}
		m := e.metrics().TableMetrics
		if m.PendingRows == 0 && m.InmemoryPartsCount == 0 && m.SmallPartsCount+m.BigPartsCount <= 1 {
			break
		}
		if time.Now().After(deadline) {
			return d, fmt.Errorf("vm: parts not merged after 5 minutes: %d in memory, %d small, %d big", m.InmemoryPartsCount, m.SmallPartsCount, m.BigPartsCount)
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.s.MustClose()
	d.total = dirSize(e.dir, func(rel string) bool { return rel == "cache" || rel == "snapshots" })
	d.index = 0
	_ = filepath.WalkDir(e.dir, func(p string, de fs.DirEntry, err error) error {
		if err == nil && de.IsDir() && de.Name() == "indexdb" {
			d.index += dirSize(p, nil)
			return filepath.SkipDir
		}
		return nil
	})
	e.s = vmstorage.MustOpenStorage(e.dir, vmstorage.OpenOptions{Retention: vmRetention})
	return d, nil
}

func (e *vmEngine) stats() map[string]float64 {
	m := e.metrics()
	return map[string]float64{
		"tsid-cache-entries":  float64(m.TSIDCacheSize),
		"tsid-cache-bytes":    float64(m.TSIDCacheSizeBytes),
		"tsid-cache-maxbytes": float64(m.TSIDCacheSizeMaxBytes),
		"tsid-cache-misses":   float64(m.TSIDCacheMisses),
		"slow-row-inserts":    float64(m.SlowRowInserts),
		"new-series":          float64(m.NewTimeseriesCreated),
	}
}

func (e *vmEngine) close() error {
	e.s.MustClose()
	return nil
}

// dirSize is the bytes of the regular files under dir, skipping the
// top-level entries skip names (relative paths).
func dirSize(dir string, skip func(rel string) bool) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err // a missing directory is 0 bytes
		}
		rel, _ := filepath.Rel(dir, p)
		if skip != nil && !strings.Contains(rel, string(filepath.Separator)) && skip(rel) {
			if de.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if de.Type().IsRegular() {
			if fi, err := de.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
