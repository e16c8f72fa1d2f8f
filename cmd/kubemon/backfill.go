package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"time"

	prommodel "github.com/prometheus/common/model"

	"github.com/kubemon/kubemon/internal/app"
	"github.com/kubemon/kubemon/internal/backfill"
	"github.com/kubemon/kubemon/internal/config"
)

// parseBackfill reads backfill's flags into the backfill's options. The
// simulated cluster's flags are demo's (simFlags: same names, defaults and
// meaning), and the interval and dropped series default to demo's, so that
// `kubemon demo` with the same flags continues the same cluster.
func parseBackfill(args []string, stderr io.Writer) (backfill.Options, config.Log, error) {
	demoCfg, _, err := parseDemo(nil, io.Discard)
	if err != nil {
		return backfill.Options{}, config.Log{}, err
	}
	fs := flag.NewFlagSet("backfill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: kubemon backfill --data-dir DIR [flags]\n\n"+
			"Writes the history the simulator (kubemon demo's cluster) would have produced over a past range into DIR,\n"+
			"as TSDB blocks, through kubemon's scrape client and pipeline. Then\n"+
			"  kubemon demo --data-dir DIR (and the same --nodes, --pods-per-node, --containers-per-pod, --seed, --sim-mode)\n"+
			"serves that history and continues live.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	var o backfill.Options
	fs.StringVar(&o.Dir, "data-dir", "", "directory of the store to fill (required): new, empty, or holding only blocks outside the range (earlier backfills)")
	so := simFlags(fs)
	duration := fs.String("duration", "1d", "how much history, ending at --end: a Prometheus duration such as 7d, 36h or 90m; a whole number of intervals")
	fs.DurationVar(&o.Interval, "interval", demoCfg.Interval, "spacing of the samples (the scrape interval and cycle length), 1s to 1h; default demo's")
	end := fs.String("end", "", "end of the history (exclusive): an RFC 3339 time or Unix seconds, not in the future; default now; truncated to the interval")
	drop := stringList(demoCfg.MetricsDrop)
	fs.Var(&drop, "metrics-drop", "comma-separated `series` not to store, with shell wildcards (as demo's --metrics-drop)")
	set := fs.String("metrics-set", "", "a named series set in place of --metrics-drop (as demo's --metrics-set): default, large-cluster or all")
	fs.IntVar(&o.Workers, "workers", runtime.GOMAXPROCS(0), "blocks built at once; each takes about one core and one 2-hour block's TSDB head in memory")
	fs.DurationVar(&o.ProgressEvery, "progress-interval", backfill.DefaultProgressEvery, "spacing of the progress log lines (0: none)")
	lc := config.Log{Level: "info", Format: "text"}
	fs.StringVar(&lc.Level, "log-level", lc.Level, "debug, info, warn or error")
	fs.StringVar(&lc.Format, "log-format", lc.Format, "text or json")
	if err := fs.Parse(args); err != nil {
		return o, lc, err
	}
	if fs.NArg() > 0 {
		return o, lc, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	o.Nodes, o.PodsPerNode, o.ContainersPerPod, o.Seed, o.Mode = so.Nodes, so.PodsPerNode, so.ContainersPerPod, so.Seed, so.Mode
	o.Drop = drop
	var errs []error
	if *set != "" {
		d, ok := config.MetricsSetDrop(*set)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("--metrics-set %q: want default, large-cluster or all", *set))
		case !slices.Equal([]string(drop), demoCfg.MetricsDrop):
			errs = append(errs, fmt.Errorf("--metrics-set %q and --metrics-drop: set one of them", *set))
		}
		o.Drop = d
	}
	if so.Nodes < 1 {
		errs = append(errs, fmt.Errorf("--nodes %d: want at least 1", so.Nodes))
	}
	if so.PodsPerNode < 1 {
		errs = append(errs, fmt.Errorf("--pods-per-node %d: want at least 1", so.PodsPerNode))
	}
	if so.ContainersPerPod < 1 {
		errs = append(errs, fmt.Errorf("--containers-per-pod %d: want at least 1", so.ContainersPerPod))
	}
	if o.Interval <= 0 { // the options would take the default
		errs = append(errs, fmt.Errorf("--interval %s: want 1s to 1h", o.Interval))
	}
	if d, err := prommodel.ParseDuration(*duration); err != nil || d <= 0 {
		errs = append(errs, fmt.Errorf("--duration %q: want a positive duration such as 7d, 36h or 90m", *duration))
	} else {
		o.Duration = time.Duration(d)
	}
	if *end != "" {
		t, err := parseTime(*end)
		if err != nil {
			errs = append(errs, fmt.Errorf("--end %q: want an RFC 3339 time (2026-11-30T00:00:00Z) or Unix seconds", *end))
		}
		o.End = t
	}
	if lc.Level != "debug" && lc.Level != "info" && lc.Level != "warn" && lc.Level != "error" {
		errs = append(errs, fmt.Errorf("--log-level %q: want debug, info, warn or error", lc.Level))
	}
	if lc.Format != "text" && lc.Format != "json" {
		errs = append(errs, fmt.Errorf("--log-format %q: want text or json", lc.Format))
	}
	// Everything else (the data directory, the interval, the range, the
	// simulator's limits) is the options' own validation.
	check := o
	if check.Interval <= 0 { // reported above; check the rest as for the default
		check.Interval = demoCfg.Interval
	}
	if err := check.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return o, lc, fmt.Errorf("backfill: %w", errors.Join(errs...))
	}
	return o, lc, nil
}

// parseTime reads an RFC 3339 time or Unix seconds.
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(sec, 0), nil
}

func backfillCmd(ctx context.Context, args []string, stderr io.Writer) error {
	o, lc, err := parseBackfill(args, stderr)
	if err != nil {
		return err
	}
	o.Logger = app.NewLogger(lc, stderr)
	// The heap is mostly the blocks' heads, alive until each block is
	// written: collect less often than the default (GOGC=100) unless told.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	if retention := config.Default().Retention; o.Duration > retention {
		o.Logger.Warn("kubemon keeps less than this by default: run it with a longer --retention, or the oldest blocks are deleted when it opens the store",
			"duration", o.Duration, "retention", retention)
	}
	return backfill.Run(ctx, o)
}
