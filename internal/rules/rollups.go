package rules

import (
	"fmt"
	"strings"
	"time"

	"github.com/kubemon/kubemon/internal/model"
)

// RollupFile is the roll-up rules' file name, as /api/v1/rules lists it
// (generated, not on disk).
const RollupFile = "kubemon:rollup-rules.yml"

// Rollups renders recording rules that compute the namespace, workload and
// cluster roll-ups from the pod and node series, as the pipeline does
// (internal/pipeline, Aggregate) for a kubemon that sees the whole
// cluster: every metric the table rolls up by sum, summed by namespace,
// by workload (a pod's workload from its info series) and over the nodes;
// and the ratios computed from those sums (utilization, reservation, the
// share of CFS periods throttled). A sharded member sees part of the
// cluster and makes none of them itself; it evaluates these over the query
// backend (Thanos Query), where every member's data meets, every interval.
// Each ratio is computed from its sums directly, not from the recorded
// series, which reach the backend only later (through the sinks).
func Rollups(interval time.Duration) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# Roll-ups above the node, for sharded members (--shard with --query-url),\n")
	fmt.Fprintf(&b, "# generated from the metric table (internal/rules/rollups.go).\ngroups:\n")
	fmt.Fprintf(&b, "  - name: kubemon-rollups\n    interval: %s\n    rules:\n", interval)
	rule := func(record, expr string) {
		fmt.Fprintf(&b, "      - record: %s\n        expr: %s\n", record, expr)
	}
	pod, node := model.LevelPod, model.LevelNode
	ns := strings.Join(model.LevelNamespace.LabelKeys(), ", ")
	wl := strings.Join(model.LevelWorkload.LabelKeys(), ", ")
	// A pod's workload: its info series' workload labels.
	info := fmt.Sprintf(`max by (%s, %s, %s) (%s{%s!=""})`, model.LabelNamespace, model.LabelPod, wlKeys(),
		model.PromName(pod, model.Info), model.LabelWorkload)
	byNS := func(e string) string { return fmt.Sprintf("sum by (%s) (%s)", ns, e) }
	byWL := func(e string) string {
		return fmt.Sprintf("sum by (%s) (%s * on (%s, %s) group_left (%s) %s)", wl, e, model.LabelNamespace, model.LabelPod, wlKeys(), info)
	}
	overNodes := func(e string) string { return fmt.Sprintf("sum(%s)", e) }
	for m := range model.NumMetrics {
		md := model.Metrics[m]
		if md.Rollup != model.RollupSum {
			continue
		}
		if md.Levels.Has(model.LevelNamespace) && md.Levels.Has(pod) {
			rule(model.PromName(model.LevelNamespace, m), byNS(model.PromName(pod, m)))
		}
		if md.Levels.Has(model.LevelWorkload) && md.Levels.Has(pod) {
			rule(model.PromName(model.LevelWorkload, m), byWL(model.PromName(pod, m)))
		}
		if md.Levels.Has(model.LevelCluster) && md.Levels.Has(node) {
			rule(model.PromName(model.LevelCluster, m), overNodes(model.PromName(node, m)))
		}
	}
	ratio := func(l model.Level, sum func(string) string, from model.Level, r, num, den model.MetricID) {
		if model.Metrics[r].Levels.Has(l) {
			rule(model.PromName(l, r), fmt.Sprintf("%s / %s", sum(model.PromName(from, num)), sum(model.PromName(from, den))))
		}
	}
	ratio(model.LevelNamespace, byNS, pod, model.CFSThrottledRatio, model.CFSThrottledPeriodsRate, model.CFSPeriodsRate)
	ratio(model.LevelWorkload, byWL, pod, model.CFSThrottledRatio, model.CFSThrottledPeriodsRate, model.CFSPeriodsRate)
	ratio(model.LevelCluster, overNodes, node, model.CFSThrottledRatio, model.CFSThrottledPeriodsRate, model.CFSPeriodsRate)
	ratio(model.LevelCluster, overNodes, node, model.CPUUtilization, model.CPUUsageRate, model.CPUAllocatable)
	ratio(model.LevelCluster, overNodes, node, model.CPUReservation, model.CPURequest, model.CPUAllocatable)
	ratio(model.LevelCluster, overNodes, node, model.MemoryUtilization, model.MemoryWorkingSet, model.MemoryAllocatable)
	ratio(model.LevelCluster, overNodes, node, model.MemoryReservation, model.MemoryRequest, model.MemoryAllocatable)
	return []byte(b.String())
}

// wlKeys are the workload's own label keys (kind and name).
func wlKeys() string { return model.LabelWorkloadKind + ", " + model.LabelWorkload }
