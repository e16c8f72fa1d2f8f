package store

import (
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/kubemon/kubemon/internal/model"
)

// TestLabelsFollowContract checks that the series the store writes carry
// the label keys the model's contract (testdata/series.golden) lists.
func TestLabelsFollowContract(t *testing.T) {
	for _, s := range model.AllSeries() {
		o := model.Object{Level: s.Level, Node: "n", Namespace: "ns", Pod: "p", Container: "c", WorkloadKind: "Deployment", Workload: "w", Sink: "s"}
		kl := map[string]string{"app": "a"}
		e := &model.Entry{Object: o, Labels: kl, Pod: &model.PodMeta{WorkloadKind: "Deployment", Workload: "w", Labels: kl}}
		if s.Level != model.LevelPod {
			e.Pod = nil
		}
		l := SeriesLabels(e, s.Metric.ID)
		var keys []string
		l.Range(func(l labels.Label) {
			if l.Name != labels.MetricName && l.Name != model.LabelKubeLabelPrefix+"app" {
				keys = append(keys, l.Name)
			}
		})
		if l.Get(labels.MetricName) != s.Name || !slices.Equal(keys, s.Labels) {
			t.Errorf("store writes %s, the contract says %s%v", l, s.Name, s.Labels)
		}
	}
}
