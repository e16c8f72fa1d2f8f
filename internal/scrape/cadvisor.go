package scrape

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"

	"github.com/kubemon/kubemon/internal/model"
)

// cgroupKey names a cgroup in cAdvisor's series: a container (all set), a
// pod's own cgroup (Container empty) or the node's root (all empty).
type cgroupKey struct{ Namespace, Pod, Container string }

// DiskIO is a cgroup's cumulative block-device traffic, in bytes, summed
// over devices, and when cAdvisor observed it (Unix ms; 0 when the
// exposition has no timestamps, as before Kubernetes 1.16).
type DiskIO struct {
	Read, Write float64
	Time        int64
}

var (
	fsReads  = []byte("container_fs_reads_bytes_total")
	fsWrites = []byte("container_fs_writes_bytes_total")
	blkio    = []byte("container_blkio_device_usage_total")
)

// DecodeCadvisorIO reads the disk IO counters of a /metrics/cadvisor
// payload (Prometheus text format): container_fs_{reads,writes}_bytes_total,
// or container_blkio_device_usage_total{operation="Read"|"Write"} where a
// kubelet sends only that. It keeps containers, pod cgroups and the node's
// root cgroup (id="/"), understands the pre-1.16 container_name/pod_name
// labels, and skips docker's "POD" pause containers.
func DecodeCadvisorIO(data []byte) (map[cgroupKey]DiskIO, error) {
	p := textparse.NewPromParser(data, labels.NewSymbolTable(), false)
	fs := map[cgroupKey]DiskIO{}
	blk := map[cgroupKey]DiskIO{}
	var lset labels.Labels
	for {
		et, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("decode cadvisor metrics: %w", err)
		}
		if et != textparse.EntrySeries {
			continue
		}
		series, ts, v := p.Series()
		into, write := fs, false
		switch {
		case bytes.HasPrefix(series, fsReads):
		case bytes.HasPrefix(series, fsWrites):
			write = true
		case bytes.HasPrefix(series, blkio):
			into = blk
		default:
			continue
		}
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			continue
		}
		p.Labels(&lset)
		switch lset.Get(labels.MetricName) {
		case string(fsReads), string(fsWrites):
		case string(blkio):
			switch lset.Get("operation") {
			case "Read":
			case "Write":
				write = true
			default:
				continue
			}
		default:
			continue // a longer name with the same prefix
		}
		key, ok := cgroupOf(lset)
		if !ok {
			continue
		}
		c := into[key]
		if write {
			c.Write += v
		} else {
			c.Read += v
		}
		if ts != nil && *ts > c.Time {
			c.Time = *ts
		}
		into[key] = c
	}
	for k, v := range blk {
		if _, ok := fs[k]; !ok {
			fs[k] = v
		}
	}
	return fs, nil
}

// cgroupOf names the cgroup of a cAdvisor series, and whether kubemon keeps it.
func cgroupOf(l labels.Labels) (cgroupKey, bool) {
	k := cgroupKey{Namespace: l.Get("namespace"), Pod: l.Get("pod"), Container: l.Get("container")}
	if k.Pod == "" {
		k.Pod = l.Get("pod_name")
	}
	if k.Container == "" {
		k.Container = l.Get("container_name")
	}
	switch {
	case k.Container == "POD":
		return k, false
	case k.Pod != "" && k.Namespace != "":
		return k, true
	case k.Pod == "" && k.Container == "" && l.Get("id") == "/":
		return cgroupKey{}, true
	}
	return k, false
}

// mergeDiskIO sets the disk IO counters of container, pod and node entries.
func mergeDiskIO(entries []model.Entry, io map[cgroupKey]DiskIO) {
	for i := range entries {
		e := &entries[i]
		var k cgroupKey
		switch e.Object.Level {
		case model.LevelContainer:
			k = cgroupKey{e.Object.Namespace, e.Object.Pod, e.Object.Container}
		case model.LevelPod:
			k = cgroupKey{e.Object.Namespace, e.Object.Pod, ""}
		case model.LevelNode:
		default:
			continue
		}
		if v, ok := io[k]; ok {
			e.Values[model.DiskIORead] = v.Read
			e.Values[model.DiskIOWrite] = v.Write
			e.CadvisorTime = v.Time
		}
	}
}
