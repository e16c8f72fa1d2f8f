package model

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

func (k Kind) String() string {
	if k == Counter {
		return "counter"
	}
	return "gauge"
}

// InfoLabelKeys are the label keys an info series of level l carries besides
// its object's: a pod's workload, and the Kubernetes labels (each also as
// LabelKubeLabelPrefix+<sanitized name>).
func InfoLabelKeys(l Level) []string {
	if l == LevelPod {
		return []string{LabelWorkloadKind, LabelWorkload, LabelKubeLabels}
	}
	return []string{LabelKubeLabels}
}

// SeriesLabelKeys lists the fixed label keys of metric m's series at level
// l, sorted (an info series also has a LabelKubeLabelPrefix label per
// Kubernetes label).
func SeriesLabelKeys(l Level, m MetricID) []string {
	keys := slices.Clone(l.LabelKeys())
	if m == Info {
		keys = append(keys, InfoLabelKeys(l)...)
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// Series is one series name kubemon can write, as the contract lists it.
type Series struct {
	Name   string
	Level  Level
	Metric Metric
	// Labels are the fixed label keys, sorted.
	Labels []string
}

// AllSeries lists every series name kubemon can write, by level then metric
// (the order of SeriesNames).
func AllSeries() []Series {
	var out []Series
	for l := Level(0); l < NumLevels; l++ {
		for _, m := range Metrics {
			if m.Levels.Has(l) {
				out = append(out, Series{Name: PromName(l, m.ID), Level: l, Metric: m, Labels: SeriesLabelKeys(l, m.ID)})
			}
		}
	}
	return out
}

// WriteContract writes the series contract, one series a line:
//
//	name{label,...} type unit "help"
//
// It is what testdata/series.golden holds.
func WriteContract(w io.Writer) error {
	for _, s := range AllSeries() {
		keys := s.Labels
		if s.Metric.ID == Info {
			keys = append(slices.Clone(keys), LabelKubeLabelPrefix+"<name>")
		}
		if _, err := fmt.Fprintf(w, "%s{%s} %s %s %q\n", s.Name, strings.Join(keys, ","), s.Metric.Kind, s.Metric.Unit, s.Metric.Help); err != nil {
			return err
		}
	}
	return nil
}
