package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/backfill"
	"github.com/kubemon/kubemon/internal/config"
	"github.com/kubemon/kubemon/internal/sim"
)

// TestParseBackfill: the flags, their defaults (the simulator's and the
// interval are demo's) and a clear error for each bad one.
func TestParseBackfill(t *testing.T) {
	demoCfg, demoSim, err := parseDemo(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("defaults", func(t *testing.T) {
		o, lc, err := parseBackfill([]string{"--data-dir", "d"}, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		if o.Dir != "d" || o.Nodes != demoSim.Nodes || o.PodsPerNode != demoSim.PodsPerNode || o.ContainersPerPod != demoSim.ContainersPerPod ||
			o.Seed != demoSim.Seed || o.Mode != "" || o.Interval != demoCfg.Interval || o.Duration != 24*time.Hour || !o.End.IsZero() ||
			o.ProgressEvery != backfill.DefaultProgressEvery || lc.Level != "info" || lc.Format != "text" {
			t.Errorf("defaults: %+v %+v", o, lc)
		}
	})
	t.Run("flags", func(t *testing.T) {
		o, _, err := parseBackfill([]string{"--data-dir", "d", "--nodes", "1000", "--pods-per-node", "30", "--containers-per-pod", "3",
			"--seed", "7", "--sim-mode", "constant", "--duration", "7d", "--interval", "1m", "--end", "2026-11-29T00:00:00Z",
			"--workers", "3", "--metrics-drop", "*_uptime_seconds", "--log-format", "json"}, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		if o.Nodes != 1000 || o.PodsPerNode != 30 || o.ContainersPerPod != 3 || o.Seed != 7 || o.Mode != sim.ModeConstant ||
			o.Duration != 7*24*time.Hour || o.Interval != time.Minute || !o.End.Equal(time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)) ||
			o.Workers != 3 || len(o.Drop) != 1 || o.Drop[0] != "*_uptime_seconds" {
			t.Errorf("flags: %+v", o)
		}
		large, _ := config.MetricsSetDrop("large-cluster")
		if o, _, err := parseBackfill([]string{"--data-dir", "d", "--metrics-set", "large-cluster"}, &bytes.Buffer{}); err != nil || len(large) < 90 || !slices.Equal(o.Drop, large) {
			t.Errorf("--metrics-set large-cluster: %v, drop %d names, want %d", err, len(o.Drop), len(large))
		}
		if o, _, _ := parseBackfill([]string{"--data-dir", "d", "--end", "1764374400"}, &bytes.Buffer{}); !o.End.Equal(time.Unix(1764374400, 0)) {
			t.Errorf("--end in Unix seconds: %s", o.End)
		}
	})
	for _, tt := range []struct {
		name string
		args []string
		want []string // every one in the error
	}{
		{"no data dir", nil, []string{"--data-dir"}},
		{"bad duration", []string{"--data-dir", "d", "--duration", "7x"}, []string{`--duration "7x": want a positive duration such as 7d`}},
		{"zero duration", []string{"--data-dir", "d", "--duration", "0s"}, []string{`--duration "0s"`}},
		{"bad end", []string{"--data-dir", "d", "--end", "yesterday"}, []string{`--end "yesterday": want an RFC 3339 time`}},
		{"future end", []string{"--data-dir", "d", "--end", "2999-01-01T00:00:00Z"}, []string{"in the future"}},
		{"short interval", []string{"--data-dir", "d", "--interval", "100ms"}, []string{"interval 100ms: want 1s to 1h"}},
		{"odd duration", []string{"--data-dir", "d", "--interval", "7s", "--duration", "1h"}, []string{"want a whole number of intervals"}},
		{"bad mode", []string{"--data-dir", "d", "--sim-mode", "chaotic"}, []string{`sim mode "chaotic"`}},
		{"no nodes", []string{"--data-dir", "d", "--nodes", "0"}, []string{"--nodes 0: want at least 1"}},
		{"no pods", []string{"--data-dir", "d", "--pods-per-node", "0"}, []string{"--pods-per-node 0: want at least 1"}},
		{"too big", []string{"--data-dir", "d", "--nodes", "10000", "--pods-per-node", "1000"}, []string{"Nodes*PodsPerNode must be <= 5000000"}},
		{"bad log level", []string{"--data-dir", "d", "--log-level", "loud"}, []string{`--log-level "loud"`}},
		{"all at once", []string{"--duration", "x", "--interval", "0s", "--sim-mode", "y"}, []string{"--data-dir", "--duration", "interval", "sim mode"}},
		{"arguments", []string{"--data-dir", "d", "extra"}, []string{"unexpected arguments"}},
		{"unknown flag", []string{"--data-dir", "d", "--listen", ":1"}, []string{"flag provided but not defined"}},
		{"unknown series set", []string{"--data-dir", "d", "--metrics-set", "huge"}, []string{`--metrics-set "huge": want default, large-cluster or all`}},
		{"series set and drop", []string{"--data-dir", "d", "--metrics-set", "all", "--metrics-drop", "a*"}, []string{`--metrics-set "all" and --metrics-drop: set one of them`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := parseBackfill(tt.args, &bytes.Buffer{})
			if err == nil {
				t.Fatalf("parseBackfill(%q): no error", tt.args)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("parseBackfill(%q): %v, want %q in it", tt.args, err, w)
				}
			}
		})
	}
	if _, _, err := parseBackfill([]string{"-h"}, &bytes.Buffer{}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

// TestBackfillCommand: `kubemon backfill` writes blocks and refuses to
// write them again over the same range.
func TestBackfillCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	args := []string{"backfill", "--data-dir", dir, "--nodes", "1", "--pods-per-node", "1", "--duration", "1h", "--interval", "1m",
		"--end", "2026-11-28T12:00:00Z"}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, &stderr)
	}
	if !strings.Contains(stderr.String(), "backfill done") {
		t.Errorf("no summary in the log:\n%s", &stderr)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	blocks := 0
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(dir, e.Name(), "meta.json")); err == nil {
			blocks++
		}
	}
	if blocks != 1 {
		t.Errorf("%d blocks in %v, want 1", blocks, entries)
	}
	if err := run(context.Background(), args, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "already holds blocks") {
		t.Errorf("second run over the same range: %v", err)
	}
}
