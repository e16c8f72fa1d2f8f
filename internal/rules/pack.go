package rules

import (
	"bytes"
	_ "embed"
	"fmt"
	"text/template"

	"github.com/kubemon/kubemon/internal/model"
)

// DefaultPackFile is the default rule pack's file name, as /api/v1/rules
// lists it (it is embedded in the binary, not on disk).
const DefaultPackFile = "kubemon:default-rules.yml"

// packTemplate is the default rule pack: Prometheus rule groups in which
// every series name and label key is a template action filled from the
// metric table (internal/model), with [[ ]] as delimiters so that
// Prometheus's own {{ }} annotation templates pass through:
//
//	[[ series "Container" "Restarts" ]]   container_restart_count
//	[[ label "Namespace" ]]               namespace
//
// The names are the Go identifiers of the model's levels, metrics and
// label keys; an unknown one is an error when the pack is rendered.
//
//go:embed default-rules.yml.tmpl
var packTemplate string

// packLevels are the levels the pack may name, by their Go identifiers
// (model.Level<Name>).
var packLevels = map[string]model.Level{
	"Container":       model.LevelContainer,
	"Pod":             model.LevelPod,
	"Namespace":       model.LevelNamespace,
	"Workload":        model.LevelWorkload,
	"Node":            model.LevelNode,
	"SystemContainer": model.LevelSysContainer,
	"Cluster":         model.LevelCluster,
	"Kubemon":         model.LevelKubemon,
}

// packMetrics are the metrics the pack may name, by their Go identifiers
// (model.<Name>).
var packMetrics = map[string]model.MetricID{
	"CPUUsage":              model.CPUUsage,
	"CPUUsageRate":          model.CPUUsageRate,
	"CPULimit":              model.CPULimit,
	"CPUUtilization":        model.CPUUtilization,
	"MemoryWorkingSet":      model.MemoryWorkingSet,
	"MemoryLimit":           model.MemoryLimit,
	"MemoryUtilization":     model.MemoryUtilization,
	"FilesystemLimit":       model.FilesystemLimit,
	"FilesystemAvailable":   model.FilesystemAvailable,
	"EphemeralStorageUsage": model.EphemeralStorageUsage,
	"Restarts":              model.Restarts,
	"OOMKills":              model.OOMKills,
	"CrashLoopBackOff":      model.CrashLoopBackOff,
	"CFSPeriods":            model.CFSPeriods,
	"CFSThrottledPeriods":   model.CFSThrottledPeriods,
	"KubeletUp":             model.KubeletUp,
	"SinkLag":               model.SinkLag,
	"StoreSize":             model.StoreSize,
	"StoreSizeLimit":        model.StoreSizeLimit,
	"StoreVolumeAvailable":  model.StoreVolumeAvailable,
	"StoreVolumeSize":       model.StoreVolumeSize,
}

// packLabels are the label keys the pack may name, by their Go
// identifiers (model.Label<Name>).
var packLabels = map[string]string{
	"Namespace":    model.LabelNamespace,
	"Pod":          model.LabelPod,
	"Container":    model.LabelContainer,
	"Node":         model.LabelNode,
	"WorkloadKind": model.LabelWorkloadKind,
	"Workload":     model.LabelWorkload,
	"Sink":         model.LabelSink,
}

// packFuncs spell series names and label keys through the model.
var packFuncs = template.FuncMap{
	"series": func(level, metric string) (string, error) {
		l, ok := packLevels[level]
		if !ok {
			return "", fmt.Errorf("unknown level %q", level)
		}
		m, ok := packMetrics[metric]
		if !ok {
			return "", fmt.Errorf("unknown metric %q", metric)
		}
		if !model.Metrics[m].Levels.Has(l) {
			return "", fmt.Errorf("metric %s has no series at level %s", metric, level)
		}
		return model.PromName(l, m), nil
	},
	"label": func(name string) (string, error) {
		k, ok := packLabels[name]
		if !ok {
			return "", fmt.Errorf("unknown label key %q", name)
		}
		return k, nil
	},
}

// DefaultPack renders the default rule pack: a Prometheus rule file with
// kubemon's series names and label keys.
func DefaultPack() ([]byte, error) {
	t, err := template.New(DefaultPackFile).Delims("[[", "]]").Funcs(packFuncs).Option("missingkey=error").Parse(packTemplate)
	if err != nil {
		return nil, fmt.Errorf("default rule pack: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, nil); err != nil {
		return nil, fmt.Errorf("default rule pack: %w", err)
	}
	return b.Bytes(), nil
}
