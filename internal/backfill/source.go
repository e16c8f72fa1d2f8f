package backfill

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/pipeline"
	"github.com/kubemon/kubemon/internal/scrape"
	"github.com/kubemon/kubemon/internal/sim"
)

// clock is a simulated clock: the simulator evaluates its kubelets at the
// clock's time, and the pipeline reads it as its present.
type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time  { return time.Unix(0, c.ns.Load()) }
func (c *clock) set(t time.Time) { c.ns.Store(t.UnixNano()) }

// handlerTransport serves HTTP requests with an http.Handler in the same
// process: the simulator's kubelet endpoints without sockets. Response
// buffers are recycled when the body is closed (the client copies it).
type handlerTransport struct{ h http.Handler }

var responseBuffers = sync.Pool{New: func() any { return new(responseBuffer) }}

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rw := responseBuffers.Get().(*responseBuffer)
	rw.reset()
	t.h.ServeHTTP(rw, req)
	if rw.code == http.StatusOK && strings.HasSuffix(req.URL.Path, "/metrics/cadvisor") {
		rw.keepExtras()
	}
	return &http.Response{
		Status: strconv.Itoa(rw.code) + " " + http.StatusText(rw.code), StatusCode: rw.code,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: rw.header, Body: &responseBody{Reader: bytes.NewReader(rw.body.Bytes()), buf: rw},
		ContentLength: int64(rw.body.Len()), Request: req,
	}, nil
}

// responseBuffer is the http.ResponseWriter of handlerTransport.
type responseBuffer struct {
	header http.Header
	code   int
	wrote  bool
	body   bytes.Buffer
}

func (r *responseBuffer) reset() {
	r.header, r.code, r.wrote = http.Header{}, http.StatusOK, false
	r.body.Reset()
}

func (r *responseBuffer) Header() http.Header { return r.header }

func (r *responseBuffer) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
}

func (r *responseBuffer) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}

// extraFamilies are the /metrics/cadvisor families
// scrape.DecodeCadvisorExtras reads (TestDiskIOFilter holds the filter to
// that).
var extraFamilies = func() [][]byte {
	out := make([][]byte, len(scrape.ExtraFamilies))
	for i, f := range scrape.ExtraFamilies {
		out[i] = []byte(f)
	}
	return out
}()

// keepExtras drops from a /metrics/cadvisor body every line outside the
// families the scrape client reads from it beside the Summary (disk IO,
// CPU throttling, OOM events: DecodeCadvisorExtras), which decodes the
// same counters from the shorter body; parsing the simulator's whole
// exposition was the largest single cost of a backfill.
func (r *responseBuffer) keepExtras() {
	in := r.body.Bytes()
	out := in[:0] // in place: out never overtakes the line being read
	for len(in) > 0 {
		line := in
		if i := bytes.IndexByte(in, '\n'); i >= 0 {
			line, in = in[:i+1], in[i+1:]
		} else {
			in = nil
		}
		name := line
		if bytes.HasPrefix(name, []byte("# HELP ")) || bytes.HasPrefix(name, []byte("# TYPE ")) {
			name = name[len("# HELP "):]
		}
		for _, f := range extraFamilies {
			if bytes.HasPrefix(name, f) && len(name) > len(f) && (name[len(f)] == '{' || name[len(f)] == ' ') {
				out = append(out, line...)
				break
			}
		}
	}
	r.body.Truncate(len(out))
}

// responseBody returns its buffer to the pool when closed.
type responseBody struct {
	*bytes.Reader
	buf *responseBuffer
}

func (b *responseBody) Close() error {
	if b.buf != nil {
		if b.buf.body.Cap() <= 16<<20 {
			responseBuffers.Put(b.buf)
		}
		b.buf = nil
		b.Reader = bytes.NewReader(nil)
	}
	return nil
}

// source is one worker's copy of the live chain: a simulated cluster on a
// clock of its own, the scrape client reading its kubelet endpoints (in
// process, through the simulator's API-server node proxy), and the
// pipeline's Collector, configured as `kubemon demo` configures them.
type source struct {
	clock     clock
	cluster   *sim.Cluster
	client    *scrape.Client
	collector *pipeline.Collector
	targets   []model.Target // in scrape order within a cycle: by offset
	offsets   []time.Duration
	interval  time.Duration
	emit      func(ctx context.Context, b *model.Batch)
}

// simBase is the base URL of the simulated nodes' kubelets through the
// simulator's node proxy; the host is never dialled.
const simBase = "http://sim.invalid/api/v1/nodes/"

func newSource(o *Options, epoch time.Time) (*source, error) {
	s := &source{interval: o.Interval}
	s.clock.set(epoch) // the simulator anchors its nodes' boot times at New
	cl, err := sim.New(sim.Options{
		Nodes: o.Nodes, PodsPerNode: o.PodsPerNode, ContainersPerPod: o.ContainersPerPod,
		Seed: o.Seed, Mode: o.Mode, Now: s.clock.Now,
		// kubemon reads only the lean families of /metrics/cadvisor; the
		// kubelet's full payload is three times the bytes to render.
		Cadvisor: sim.CadvisorLean,
	})
	if err != nil {
		return nil, err
	}
	s.cluster = cl
	s.targets = Targets(cl, func(n sim.NodeInfo) string { return simBase + url.PathEscape(n.Name) + "/proxy" })
	slices.SortStableFunc(s.targets, func(a, b model.Target) int {
		return int(scrape.Offset(a.Node, o.Interval) - scrape.Offset(b.Node, o.Interval))
	})
	for _, t := range s.targets {
		s.offsets = append(s.offsets, scrape.Offset(t.Node, o.Interval))
	}
	// `kubemon demo`'s scrape settings: the Summary API, disk IO, CPU
	// throttling and OOM events from /metrics/cadvisor, pods from the
	// kubelet's /pods.
	s.client = scrape.NewClient(scrape.ClientOptions{
		Endpoint: scrape.EndpointSummary, Cadvisor: true, FetchPods: true,
		HTTPClient: &http.Client{Transport: handlerTransport{cl.Handler()}},
		Timeout:    time.Minute,
	})
	targets := s.targets
	s.collector = pipeline.NewCollector(pipeline.CollectorOptions{
		Interval: o.Interval,
		Targets:  func() []model.Target { return targets },
		Now:      s.clock.Now,
		Emit:     func(ctx context.Context, b *model.Batch) { s.emit(ctx, b) },
	})
	return s, nil
}

// Targets are the simulated cluster's nodes as `kubemon demo` hands them to
// the scrape loops: name, kubelet URL (base(node)) and the Node's capacity
// and allocatable (cores, bytes) and labels.
func Targets(cl *sim.Cluster, base func(sim.NodeInfo) string) []model.Target {
	var ts []model.Target
	for _, n := range cl.Nodes() {
		ts = append(ts, model.Target{
			Node: n.Name,
			URL:  base(n),
			Meta: model.NodeMeta{
				Name: n.Name, Labels: n.Labels,
				CPUCapacity: float64(n.CPUCapacityMillicores) / 1000, CPUAllocatable: float64(n.CPUAllocatableMillicores) / 1000,
				MemoryCapacity: float64(n.MemoryCapacityBytes), MemoryAllocatable: float64(n.MemoryAllocatableBytes),
			},
		})
	}
	return ts
}

// cycle runs one pipeline cycle ending at end, as kubemon runs it live:
// every node is scraped at its offset inside the interval before end (the
// simulator evaluated at that time, truncated to the second as kubelets
// report), its batch processed and emitted at once, and the cycle's
// roll-ups emitted at end.
func (s *source) cycle(ctx context.Context, end time.Time) (scrapes int, err error) {
	begin := end.Add(-s.interval)
	for i, t := range s.targets {
		at := begin.Add(s.offsets[i])
		s.clock.set(at)
		stats, err := s.client.Scrape(ctx, t)
		if err != nil {
			return scrapes, fmt.Errorf("backfill: scrape %s at %s: %w", t.Node, at.UTC().Format(time.RFC3339), err)
		}
		// The client stamps its scrape with the wall clock; live, that is
		// the scrape's time, which the pipeline ends vanished objects at.
		stats.ScrapeTime = at
		if err := checkTimes(stats, at); err != nil {
			return scrapes, err
		}
		s.collector.Handle(ctx, t, stats, nil)
		scrapes++
	}
	s.clock.set(end)
	s.collector.Cycle(ctx, end)
	return scrapes, ctx.Err()
}

// checkTimes makes sure every entry carries the simulator's time, not the
// wall clock the decoders fall back on for a payload without one: such a
// sample would land outside the history.
func checkTimes(stats *model.NodeStats, at time.Time) error {
	hi, lo := at.UnixMilli(), at.Add(-time.Second).UnixMilli()
	for i := range stats.Entries {
		e := &stats.Entries[i]
		if e.Time < lo || e.Time > hi || e.CadvisorTime != 0 && (e.CadvisorTime < lo || e.CadvisorTime > hi) {
			return fmt.Errorf("backfill: node %s scraped at %s: %s entry %v stamped %s, not the simulated time",
				stats.Node, at.UTC().Format(time.RFC3339), e.Object.Level, e.Object, time.UnixMilli(e.Time).UTC().Format(time.RFC3339Nano))
		}
	}
	return nil
}
