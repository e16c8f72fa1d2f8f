package store

import (
	"context"
	"io/fs"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/util/compression"

	"github.com/kubemon/kubemon/internal/model"
)

// walBatches are cycles of a node's containers with moving values: CPU
// and network counters that grow by a noisy rate, a working set and usage
// that wander, the rest near constant, as a kubelet reports them.
func walBatches(containers, cycles int) []*model.Batch {
	r := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC).UnixMilli()
	type state struct{ cpu, ws, fs float64 }
	st := make([]state, containers)
	for i := range st {
		st[i] = state{cpu: r.Float64() * 1e4, ws: 50e6 + r.Float64()*200e6, fs: 1e6 + r.Float64()*1e8}
	}
	out := make([]*model.Batch, 0, cycles)
	for c := range cycles {
		ts := t0 + int64(c)*15_000
		b := &model.Batch{Time: time.UnixMilli(ts)}
		for i := range st {
			s := &st[i]
			s.cpu += 15 * (0.05 + 0.2*r.Float64())
			s.ws += (r.Float64() - 0.5) * 2e6
			s.fs += r.Float64() * 4096
			e := model.Entry{Object: model.Object{Level: model.LevelContainer, Node: "node-" + strconv.Itoa(i/60),
				Namespace: "ns-" + strconv.Itoa(i%7), Pod: "pod-" + strconv.Itoa(i/2), Container: "c" + strconv.Itoa(i%2)},
				Time: ts, Values: model.NewValues()}
			v := &e.Values
			v[model.CPUUsage], v[model.CPUUsageRate] = s.cpu, 0.05+0.2*r.Float64()
			v[model.MemoryWorkingSet], v[model.MemoryUsage], v[model.MemoryRSS] = math.Round(s.ws), math.Round(s.ws*1.2), math.Round(s.ws*0.8)
			v[model.FilesystemUsage] = math.Round(s.fs)
			v[model.CPURequest], v[model.CPULimit], v[model.MemoryRequest], v[model.MemoryLimit] = 0.1, 0.5, 128<<20, 512<<20
			v[model.Restarts], v[model.Uptime] = 0, float64(c*15)
			b.Entries = append(b.Entries, e)
		}
		out = append(out, b)
	}
	return out
}

func dirBytes(t testing.TB, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// walBytesPerSample appends batches to a store with WAL compression c and
// returns the WAL's bytes per sample appended.
func walBytesPerSample(t testing.TB, c compression.Type, batches []*model.Batch) float64 {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Retention: 24 * time.Hour, WALCompression: c})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, b := range batches {
		k, err := s.Append(context.Background(), b)
		if err != nil {
			t.Fatal(err)
		}
		n += k
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no sample appended")
	}
	return float64(dirBytes(t, filepath.Join(dir, "wal"))) / float64(n)
}

// TestWALCompression: snappy is the default, as Prometheus's, and takes
// fewer WAL bytes per sample than none on a kubelet's kind of data; an
// unknown kind is refused.
func TestWALCompression(t *testing.T) {
	batches := walBatches(600, 8)
	none := walBytesPerSample(t, compression.None, batches)
	def := walBytesPerSample(t, "", batches)
	snappy := walBytesPerSample(t, compression.Snappy, batches)
	t.Logf("WAL bytes per sample: none %.2f, default %.2f, snappy %.2f", none, def, snappy)
	if !(def < 0.8*none) || !(math.Abs(def-snappy) <= 0.05*snappy) {
		t.Errorf("WAL bytes per sample: default %.2f, snappy %.2f, none %.2f: want the default snappy, a fifth smaller than none at least", def, snappy, none)
	}
	if _, err := Open(Options{Dir: t.TempDir(), WALCompression: "lz4"}); err == nil || !strings.Contains(err.Error(), `unknown WAL compression "lz4"`) {
		t.Errorf("lz4: %v", err)
	}
}

// BenchmarkWALCompression reports the WAL's bytes per sample and the time
// an append of one cycle of 3,000 containers takes, by compression.
func BenchmarkWALCompression(b *testing.B) {
	batches := walBatches(3000, 8)
	for _, c := range []compression.Type{compression.None, compression.Snappy, compression.Zstd} {
		b.Run(c, func(b *testing.B) {
			var per float64
			for range b.N {
				per = walBytesPerSample(b, c, batches)
			}
			b.ReportMetric(per, "B/sample")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batches)), "ns/cycle")
		})
	}
}
