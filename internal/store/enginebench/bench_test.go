package enginebench

import (
	"bufio"
	"context"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// The benchmarks run each engine's whole scenario once per b.N (run them
// with -benchtime 1x), one engine per `go test` process so that its RSS is
// its own:
//
//	KUBEMON_ENGINEBENCH_SERIES=1000000 go test -run '^$' -bench '^BenchmarkTSDB$' -benchtime 1x ./internal/store/enginebench
//	KUBEMON_ENGINEBENCH_SERIES=1000000 go test -run '^$' -bench '^BenchmarkVM$' -benchtime 1x ./internal/store/enginebench
//	KUBEMON_ENGINEBENCH_LONG_SERIES=100000 KUBEMON_ENGINEBENCH_LONG_CYCLES=240 go test -run '^$' -bench '^BenchmarkTSDBLong$' -benchtime 1x ./internal/store/enginebench
//	KUBEMON_ENGINEBENCH_SERIES=1000000 KUBEMON_ENGINEBENCH_VM_MEMORY=256MiB go test -run '^$' -bench '^BenchmarkVM$' -benchtime 1x ./internal/store/enginebench
//
// (under the machine's benchmark lock: flock /tmp/bench.lock nice -n 5 …;
// docs/architecture.md has the figures.)
//
// Environment (defaults small, so a plain run is cheap):
//
//	KUBEMON_ENGINEBENCH_SERIES        active series of BenchmarkTSDB/VM (20000)
//	KUBEMON_ENGINEBENCH_CYCLES        cycles of 15 s they append (8)
//	KUBEMON_ENGINEBENCH_LONG_SERIES   series of the Long benchmarks (6000)
//	KUBEMON_ENGINEBENCH_LONG_CYCLES   their cycles (120: a full chunk)
//	KUBEMON_ENGINEBENCH_VM_MEMORY     VM's -memory.allowedBytes, e.g. 256MiB
//	                                  (default: 60 % of the machine's memory)

func envInt(b testing.TB, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

type opener func(dir string, series int) (engine, error)

func BenchmarkTSDB(b *testing.B) { benchActive(b, openTSDB) }
func BenchmarkVM(b *testing.B)   { benchActive(b, openVM) }

func BenchmarkTSDBLong(b *testing.B) { benchLong(b, openTSDB) }
func BenchmarkVMLong(b *testing.B)   { benchLong(b, openVM) }

// BenchmarkGen is the generator's own cost a sample (labels and value),
// which ingest takes out of the engines' figures.
func BenchmarkGen(b *testing.B) {
	w := New(envInt(b, "KUBEMON_ENGINEBENCH_SERIES", 20000), time.Now())
	b.ResetTimer()
	var sink float64
	var n int
	for range b.N {
		for i := range w.Len() {
			s := w.Series(i)
			sink += w.Value(i, 3) + float64(len(s.Pod))
		}
		n += w.Len()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/sample")
	if math.IsNaN(sink) {
		b.Fatal("NaN")
	}
}

// cpuTime is the process's user+system CPU time: every thread, so an
// engine's background work (VM's flushes and merges, the GC) counts.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type mem struct {
	heap    uint64 // HeapInuse after GC
	rss     uint64 // VmRSS after GC and returning free memory to the OS
	rssAnon uint64
	hwm     uint64 // VmHWM: the process's peak RSS
}

func measureMem() mem {
	debug.FreeOSMemory() // a GC, then free pages back to the OS
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := mem{heap: ms.HeapInuse}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			m.rss = kb << 10
		case "RssAnon":
			m.rssAnon = kb << 10
		case "VmHWM":
			m.hwm = kb << 10
		}
	}
	return m
}

// peakHeap samples HeapInuse every 100 ms until stopped.
func peakHeap() (stop func() uint64) {
	var (
		mu   sync.Mutex
		peak uint64
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		mu.Lock()
		peak = max(peak, ms.HeapInuse)
		mu.Unlock()
	}
	wg.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sample()
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		sample()
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// rusageThread is Linux's RUSAGE_THREAD: the calling thread's CPU time.
const rusageThread = 1

func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ingest appends cycles [from, to) node by node and returns the wall and
// CPU time the engine took. Each cycle's values are computed into vals
// first (the generator costs about as much as an append), and that is
// taken out: wall time counts only the appends, CPU time is the process's
// (so the engine's background work counts) less the generating thread's.
func ingest(tb testing.TB, e engine, w *Workload, vals []float64, from, to int) (wall, cpu time.Duration) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var gen time.Duration
	c0 := cpuTime()
	for c := from; c < to; c++ {
		g0 := threadCPU()
		for i := range vals {
			vals[i] = w.Value(i, c)
		}
		gen += threadCPU() - g0
		t0 := time.Now()
		for n := range w.Nodes() {
			lo, hi := w.NodeRange(n)
			if err := e.appendNode(w, lo, hi, c, vals[lo:hi]); err != nil {
				tb.Fatal(err)
			}
		}
		wall += time.Since(t0)
	}
	return wall, cpuTime() - c0 - gen
}

// lookback is how far back a "latest sample" read looks, PromQL's default
// lookback delta.
const lookback = 5 * time.Minute

// The three questions the benchmark asks, raw series selection and sample
// reading on both engines (kubemon's PromQL engine sits on the TSDB's
// querier; VM's storage would need an adapter to it).

// queryPod reads one container's CPU over [mint, maxt]: a single series
// range read. It returns the samples read.
func queryPod(tb testing.TB, e engine, ns, pod, container string, mint, maxt int64) int {
	n := 0
	err := e.read(context.Background(), mint, maxt, []eq{
		{labels.MetricName, Metrics[CPUMetric].name}, {LabelNamespace, ns}, {LabelPod, pod}, {LabelContainer, container},
	}, func(_ func(string) string, ts []int64, _ []float64) { n += len(ts) })
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

type podCPU struct {
	pod   string
	cores float64
}

// queryTop reads the newest CPU sample at t of every container of a
// namespace and returns the k pods using the most, and the series read.
func queryTop(tb testing.TB, e engine, ns string, t int64, k int) ([]podCPU, int) {
	byPod := map[string]float64{}
	series := 0
	err := e.read(context.Background(), t-lookback.Milliseconds(), t, []eq{
		{labels.MetricName, Metrics[CPUMetric].name}, {LabelNamespace, ns},
	}, func(get func(string) string, _ []int64, vs []float64) {
		if len(vs) > 0 {
			byPod[get(LabelPod)] += vs[len(vs)-1]
			series++
		}
	})
	if err != nil {
		tb.Fatal(err)
	}
	return topK(byPod, k), series
}

func topK(byPod map[string]float64, k int) []podCPU {
	out := make([]podCPU, 0, len(byPod))
	for p, v := range byPod {
		out = append(out, podCPU{p, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].cores != out[j].cores {
			return out[i].cores > out[j].cores
		}
		return out[i].pod < out[j].pod
	})
	return out[:min(k, len(out))]
}

// querySum reads the newest sample at t of every container CPU series and
// returns their sum and the series read.
func querySum(tb testing.TB, e engine, t int64) (float64, int) {
	sum, series := 0.0, 0
	err := e.read(context.Background(), t-lookback.Milliseconds(), t, []eq{
		{labels.MetricName, Metrics[CPUMetric].name},
	}, func(_ func(string) string, _ []int64, vs []float64) {
		if len(vs) > 0 {
			sum += vs[len(vs)-1]
			series++
		}
	})
	if err != nil {
		tb.Fatal(err)
	}
	return sum, series
}

// timeQuery runs q reps times and returns the first run's and the median
// latency.
func timeQuery(reps int, q func()) (first, median time.Duration) {
	d := make([]time.Duration, reps)
	for i := range d {
		t0 := time.Now()
		q()
		d[i] = time.Since(t0)
	}
	first = d[0]
	slices.Sort(d)
	return first, d[len(d)/2]
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// target is the pod the single-pod query reads, and its namespace the top
// query's.
func target(w *Workload) (ns, pod, container string) {
	s := w.Series((w.Len()/NumMetrics/2)*NumMetrics + CPUMetric)
	return s.Namespace, s.Pod, s.Container
}

// runQueries times the three questions at the workload's last cycle and
// checks that each read what the workload holds.
func runQueries(b *testing.B, e engine, w *Workload, cycles int, suffix string) {
	t := w.Time(cycles - 1)
	ns, pod, container := target(w)
	wantTop := len(w.Containers(ns, ""))
	var n int
	first, med := timeQuery(50, func() { n = queryPod(b, e, ns, pod, container, w.Start, t) })
	if n != cycles {
		b.Fatalf("pod query read %d samples, want %d", n, cycles)
	}
	b.ReportMetric(ms(med), "ms/q-pod"+suffix)
	b.ReportMetric(ms(first), "ms/q-pod-first"+suffix)
	first, med = timeQuery(20, func() { _, n = queryTop(b, e, ns, t, 10) })
	if n != wantTop {
		b.Fatalf("top query read %d series, want %d", n, wantTop)
	}
	b.ReportMetric(ms(med), "ms/q-top10"+suffix)
	b.ReportMetric(ms(first), "ms/q-top10-first"+suffix)
	first, med = timeQuery(5, func() { _, n = querySum(b, e, t) })
	if n != w.Len()/NumMetrics {
		b.Fatalf("sum query read %d series, want %d", n, w.Len()/NumMetrics)
	}
	b.ReportMetric(ms(med), "ms/q-sum"+suffix)
	b.ReportMetric(ms(first), "ms/q-sum-first"+suffix)
	b.Logf("queries%s: pod %s/%s/%s, top-10 over %d series of namespace %s, sum over %d series", suffix, ns, pod, container, wantTop, ns, n)
}

func reportStats(b *testing.B, e engine) {
	for k, v := range e.stats() {
		b.Logf("%s = %.0f", k, v)
	}
}

// benchActive: the active series at the benchmark's size, a few cycles.
// Ingest CPU of the first cycle (series creation) and of the later ones,
// memory per series, query latency.
func benchActive(b *testing.B, open opener) {
	series := envInt(b, "KUBEMON_ENGINEBENCH_SERIES", 20000)
	cycles := envInt(b, "KUBEMON_ENGINEBENCH_CYCLES", 8)
	if cycles < 2 {
		b.Fatal("KUBEMON_ENGINEBENCH_CYCLES must be at least 2")
	}
	for range b.N {
		w := New(series, StartFor(time.Now(), cycles))
		n := float64(w.Len())
		vals := make([]float64, w.Len())
		base := measureMem()
		e, err := open(b.TempDir(), w.Len())
		if err != nil {
			b.Fatal(err)
		}
		stopPeak := peakHeap()
		wall0, cpu0 := ingest(b, e, w, vals, 0, 1)
		var before map[string]float64
		if _, ok := e.(*vmEngine); ok {
			before = e.stats()
		}
		wall1, cpu1 := ingest(b, e, w, vals, 1, cycles)
		if err := e.flush(); err != nil {
			b.Fatal(err)
		}
		peak := stopPeak()
		if before != nil {
			after := e.stats()
			later := n * float64(cycles-1)
			b.ReportMetric((after["slow-row-inserts"]-before["slow-row-inserts"])/later, "slow-inserts/sample")
			b.ReportMetric(after["tsid-cache-maxbytes"]/(1<<20), "MB-tsid-cache-max")
		}
		s0 := cpuTime()
		e.settle()
		// VM's background flush after the appends (the TSDB has none).
		b.ReportMetric(float64((cpuTime()-s0).Nanoseconds())/(n*float64(cycles)), "cpu-ns/sample-settle")
		m := measureMem()
		b.ReportMetric(n, "series")
		b.ReportMetric(float64(wall0.Nanoseconds())/n, "ns/sample-first")
		b.ReportMetric(float64(cpu0.Nanoseconds())/n, "cpu-ns/sample-first")
		later := n * float64(cycles-1)
		b.ReportMetric(float64(wall1.Nanoseconds())/later, "ns/sample")
		b.ReportMetric(float64(cpu1.Nanoseconds())/later, "cpu-ns/sample")
		b.ReportMetric((float64(m.heap)-float64(base.heap))/n, "B/series-heap")
		b.ReportMetric((float64(m.rss)-float64(base.rss))/n, "B/series-rss")
		b.ReportMetric((float64(m.rssAnon)-float64(base.rssAnon))/n, "B/series-rss-anon")
		b.ReportMetric((float64(peak)-float64(base.heap))/n, "B/series-peak-heap")
		b.ReportMetric(float64(m.hwm)/(1<<20), "MB-peak-rss")
		b.ReportMetric(float64(base.rss)/(1<<20), "MB-base-rss")
		runQueries(b, e, w, cycles, "")
		reportStats(b, e)
		if err := e.close(); err != nil {
			b.Fatal(err)
		}
	}
}

// benchLong: fewer series over many cycles (120 fills a TSDB chunk), then
// everything persisted: disk bytes a sample, memory per series once chunks
// are full, and the queries over the persisted data.
func benchLong(b *testing.B, open opener) {
	series := envInt(b, "KUBEMON_ENGINEBENCH_LONG_SERIES", 6000)
	cycles := envInt(b, "KUBEMON_ENGINEBENCH_LONG_CYCLES", 120)
	if cycles < 2 || cycles > 480 {
		b.Fatal("KUBEMON_ENGINEBENCH_LONG_CYCLES must be 2…480 (2 hours)")
	}
	for range b.N {
		w := New(series, StartFor(time.Now(), cycles))
		n := float64(w.Len())
		samples := n * float64(cycles)
		vals := make([]float64, w.Len())
		base := measureMem()
		e, err := open(b.TempDir(), w.Len())
		if err != nil {
			b.Fatal(err)
		}
		_, _ = ingest(b, e, w, vals, 0, 1)
		wall, cpu := ingest(b, e, w, vals, 1, cycles)
		if err := e.flush(); err != nil {
			b.Fatal(err)
		}
		e.settle()
		m := measureMem()
		p0 := cpuTime()
		d, err := e.persist()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64((cpuTime()-p0).Nanoseconds())/samples, "cpu-ns/sample-persist")
		b.ReportMetric(n, "series")
		b.ReportMetric(float64(cycles), "cycles")
		later := n * float64(cycles-1)
		b.ReportMetric(float64(wall.Nanoseconds())/later, "ns/sample")
		b.ReportMetric(float64(cpu.Nanoseconds())/later, "cpu-ns/sample")
		b.ReportMetric((float64(m.heap)-float64(base.heap))/n, "B/series-heap")
		b.ReportMetric((float64(m.rss)-float64(base.rss))/n, "B/series-rss")
		b.ReportMetric(float64(d.total)/samples, "B/sample-disk")
		b.ReportMetric(float64(d.total-d.index)/samples, "B/sample-data")
		b.ReportMetric(float64(d.index)/n, "B/series-index")
		if d.wal > 0 {
			b.ReportMetric(float64(d.wal)/samples, "B/sample-wal")
		}
		runQueries(b, e, w, cycles, "")
		if err := e.close(); err != nil {
			b.Fatal(err)
		}
	}
}
