package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubemon/kubemon/internal/config"
	"github.com/kubemon/kubemon/internal/sink/influxdb"
)

func TestNewWriter(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sink          config.Sink
		batch, shards int
		errHas        string
	}{
		{sink: config.Sink{Type: config.SinkInfluxDB, URL: "http://h:8086"}, batch: influxdb.MaxPointsPerRequest, shards: 1},
		{sink: config.Sink{Type: config.SinkInfluxDB, URL: "http://h:8086", User: "u", PasswordFile: pw, BatchSize: 100, Shards: 3}, batch: 100, shards: 3},
		{sink: config.Sink{Type: config.SinkRemoteWrite, URL: "http://h/api/v1/write"}, batch: 2000, shards: 4},
		{sink: config.Sink{Type: config.SinkRemoteWrite, URL: "http://h/api/v1/write", PasswordFile: filepath.Join(t.TempDir(), "missing")}, errHas: "missing"},
		{sink: config.Sink{Type: "kafka", URL: "http://h"}, errHas: `sink type "kafka" not supported`},
	} {
		w, batch, shards, err := newWriter(tc.sink)
		if tc.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("%+v: error %v, want %q", tc.sink, err, tc.errHas)
			}
			continue
		}
		if err != nil || w == nil {
			t.Errorf("%+v: %v", tc.sink, err)
			continue
		}
		if batch != tc.batch || shards != tc.shards {
			t.Errorf("%+v: batch %d shards %d, want %d %d", tc.sink, batch, shards, tc.batch, tc.shards)
		}
	}
	if got := redact("http://root:pw@influx:8086/x"); got != "http://…@influx:8086/x" {
		t.Errorf("redact: %s", got)
	}
}
