package scrape

import (
	"bytes"
	"fmt"
	"math"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	pmodel "github.com/prometheus/common/model"

	"github.com/kubemon/kubemon/internal/model"
)

// DecodeResource decodes a kubelet /metrics/resource payload (what
// metrics-server reads: CPU counters and working sets of the node, its pods
// and containers, with the containers' start times) into entries. Every
// value keeps its own sample timestamp; samples without one take now.
// A start time at or before the Unix epoch (the Go zero time some kubelets
// sent, with a negative timestamp) is ignored.
//
// It uses expfmt's parser, which accepts the negative timestamps that
// Prometheus's own parser rejects.
func DecodeResource(data []byte, node string, now time.Time) ([]model.Entry, error) {
	parser := expfmt.NewTextParser(pmodel.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decode resource metrics: %w", err)
	}
	idx := map[model.Object]int{}
	var entries []model.Entry
	at := func(o model.Object) *model.Entry {
		i, ok := idx[o]
		if !ok {
			i = len(entries)
			idx[o] = i
			entries = append(entries, model.Entry{Object: o, Values: model.NewValues()})
		}
		return &entries[i]
	}
	at(model.Object{Level: model.LevelNode, Node: node})
	for _, name := range []string{
		"node_cpu_usage_seconds_total", "node_memory_working_set_bytes",
		"pod_cpu_usage_seconds_total", "pod_memory_working_set_bytes",
		"container_cpu_usage_seconds_total", "container_memory_working_set_bytes", "container_start_time_seconds",
	} {
		fam := families[name]
		if fam == nil {
			continue
		}
		for _, m := range fam.GetMetric() {
			lbl := func(n string) string {
				for _, l := range m.GetLabel() {
					if l.GetName() == n {
						return l.GetValue()
					}
				}
				return ""
			}
			o := model.Object{Level: model.LevelNode, Node: node}
			switch name[:3] {
			case "pod":
				o = model.Object{Level: model.LevelPod, Node: node, Namespace: lbl("namespace"), Pod: lbl("pod")}
			case "con":
				o = model.Object{Level: model.LevelContainer, Node: node, Namespace: lbl("namespace"), Pod: lbl("pod"), Container: lbl("container")}
			}
			if o.Level != model.LevelNode && (o.Namespace == "" || o.Pod == "" || (o.Level == model.LevelContainer && o.Container == "")) {
				return nil, fmt.Errorf("decode resource metrics: %s without namespace, pod or container labels", name)
			}
			v := value(m)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			e := at(o)
			switch name {
			case "container_start_time_seconds":
				if v > 0 {
					e.Start = int64(v * 1000)
				}
				continue
			case "node_cpu_usage_seconds_total", "pod_cpu_usage_seconds_total", "container_cpu_usage_seconds_total":
				if v < 0 {
					return nil, fmt.Errorf("decode resource metrics: negative %s %v", name, v)
				}
				e.Values[model.CPUUsage] = v
			default:
				if v < 0 {
					return nil, fmt.Errorf("decode resource metrics: negative %s %v", name, v)
				}
				e.Values[model.MemoryWorkingSet] = v
			}
			if ts := m.GetTimestampMs(); ts > e.Time {
				e.Time = ts
			}
		}
	}
	for i := range entries {
		e := &entries[i]
		if e.Time == 0 {
			e.Time = now.UnixMilli()
		}
		if e.Start != 0 && e.Time >= e.Start {
			e.Values[model.Uptime] = float64(e.Time-e.Start) / 1000
		}
	}
	return entries, nil
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return math.NaN()
}
