package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/storage"

	"github.com/kubemon/kubemon/internal/config"
	"github.com/kubemon/kubemon/internal/scrape"
	"github.com/kubemon/kubemon/internal/sink"
	"github.com/kubemon/kubemon/internal/sink/influxdb"
	"github.com/kubemon/kubemon/internal/sink/remotewrite"
)

// startSinks builds an Exporter per configured sink, reading q, runs
// each in the group and returns them.
func startSinks(cfg config.Config, q storage.Queryable, log *slog.Logger, reg prometheus.Registerer, goRun func(string, func(context.Context) error)) ([]*sink.Exporter, error) {
	var exporters []*sink.Exporter
	sinks := append([]config.Sink(nil), cfg.Sinks...)
	config.NameSinks(sinks)
	for _, s := range sinks {
		if !s.ExportsMetrics() {
			continue // events=only: an eventer (startEventSinks)
		}
		w, batch, shards, err := newWriter(s)
		if err != nil {
			return nil, fmt.Errorf("sink %s: %w", s.Name, err)
		}
		e, err := sink.NewExporter(sink.Options{
			Name: s.Name, Writer: w, Store: q, Dir: filepath.Join(cfg.DataDir, "sinks"),
			Interval: cfg.Interval,
			// Samples carry the kubelet's stats time, which may be as old
			// as the clock-skew tolerance before the node's batch is
			// shifted to its receive time, and are stored when the scrape
			// ends: a range is complete that long after.
			Settle:    scrape.DefaultClockSkewTolerance(cfg.Interval) + cfg.ScrapeTimeout() + 2*time.Second,
			BatchSize: batch, Shards: shards, Timeout: s.Timeout, MaxLag: s.MaxLag,
			Logger: log, Registerer: reg,
		})
		if err != nil {
			return nil, err
		}
		log.Info("sink configured", "sink", s.Name, "type", s.Type, "url", redact(s.URL))
		goRun("sink "+s.Name, e.Run)
		exporters = append(exporters, e)
	}
	return exporters, nil
}

// newWriter builds a sink's Writer, with its batch size and shard count
// (the sink's own or the type's defaults).
func newWriter(s config.Sink) (w sink.Writer, batch, shards int, err error) {
	password := s.Password
	if s.PasswordFile != "" {
		b, err := os.ReadFile(s.PasswordFile)
		if err != nil {
			return nil, 0, 0, err
		}
		password = strings.TrimSpace(string(b))
	}
	switch s.Type {
	case config.SinkInfluxDB:
		db := s.Database
		if db == "" && s.Bucket == "" {
			db = "k8s" // Heapster's default database
		}
		w, err = influxdb.New(influxdb.Options{
			URL: s.URL, Database: db, RetentionPolicy: s.RetentionPolicy, RetentionDuration: s.RetentionDuration,
			User: s.User, Password: password, Bucket: s.Bucket, Org: s.Org, Token: s.Token,
			ClusterName: s.ClusterName, WithFields: s.WithFields, DisableGzip: s.DisableGzip, Timeout: s.Timeout,
			CAFile: s.TLS.CAFile, InsecureSkipVerify: s.TLS.InsecureSkipVerify,
		})
		return w, orDefault(s.BatchSize, influxdb.MaxPointsPerRequest), orDefault(s.Shards, 1), err
	case config.SinkRemoteWrite:
		batch := orDefault(s.BatchSize, 2000)
		w, err = remotewrite.New(remotewrite.Options{
			URL: s.URL, Timeout: s.Timeout, MaxSamplesPerSend: batch, ExternalLabels: s.ExternalLabels, Headers: s.Headers,
			Username: s.User, Password: s.Password, PasswordFile: s.PasswordFile, BearerTokenFile: s.BearerTokenFile,
			CAFile: s.TLS.CAFile, CertFile: s.TLS.CertFile, KeyFile: s.TLS.KeyFile, ServerName: s.TLS.ServerName, InsecureSkipVerify: s.TLS.InsecureSkipVerify,
		})
		return w, batch, orDefault(s.Shards, 4), err
	default:
		return nil, 0, 0, fmt.Errorf("sink type %q not supported", s.Type)
	}
}

func orDefault(v, d int) int {
	if v > 0 {
		return v
	}
	return d
}

// redact drops a URL's user information for logging.
func redact(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "…@" + u[i+1:]
		}
	}
	return u
}
