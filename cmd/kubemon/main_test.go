package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/config"
	"github.com/kubemon/kubemon/internal/sim"
	"github.com/kubemon/kubemon/internal/version"
)

// writeFile writes data to a file in a fresh temporary directory.
func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// layeredFile sets one key of every kind of flag: plain string, duration,
// size, bool (both ways), and list.
const layeredFile = `
listen: "127.0.0.1:9000"
interval: 30s
retentionSize: 1GiB
pprof: true
metricsDrop: ["*_uptime_seconds"]
scrape:
  fetchPods: false
  diskIO: false
discovery:
  addressTypes: [Hostname]
  nodesFile: nodes.json
log:
  level: debug
`

// fromFile is layeredFile applied over c.
func fromFile(c *config.Config) {
	c.Listen = "127.0.0.1:9000"
	c.Interval = 30 * time.Second
	c.RetentionSize = 1 << 30
	c.Pprof = true
	c.MetricsDrop = []string{"*_uptime_seconds"}
	c.Scrape.FetchPods = false
	c.Scrape.DiskIO = false
	c.Discovery.AddressTypes = []string{"Hostname"}
	c.Discovery.NodesFile = "nodes.json"
	c.Log.Level = "debug"
}

// overFile are flags of serve and demo over keys of layeredFile, and
// fromFlags their effect.
var overFile = []string{
	"--listen", "127.0.0.1:9001",
	"--interval", "1m",
	"--retention-size", "2GiB",
	"--enable-pprof=false",
	"--kubelet-disk-io",
	"--metrics-drop", "container_memory_*page_faults*, *_uptime_seconds",
}

func fromFlags(c *config.Config) {
	c.Listen = "127.0.0.1:9001"
	c.Interval = time.Minute
	c.RetentionSize = 2 << 30
	c.Pprof = false
	c.Scrape.DiskIO = true
	c.MetricsDrop = []string{"container_memory_*page_faults*", "*_uptime_seconds"}
}

// overFileServe adds serve's own flags to overFile: every key of
// layeredFile but log.level is overridden.
var overFileServe = append(append([]string{}, overFile...),
	"--kubelet-fetch-pods",
	"--kubelet-address-types", "ExternalIP, InternalIP",
	"--nodes-file", "other.json",
)

func fromServeFlags(c *config.Config) {
	fromFlags(c)
	c.Scrape.FetchPods = true
	c.Discovery.AddressTypes = []string{"ExternalIP", "InternalIP"}
	c.Discovery.NodesFile = "other.json"
}

func demoDefaults(c *config.Config) {
	c.Listen = "127.0.0.1:8080"
	c.DataDir = "kubemon-demo-data"
	c.Interval = 10 * time.Second
	c.Scrape.DiskIO = true
}

// TestParseServe: the defaults, under the --config file, under the flags
// given (wherever --config is among them), for every kind of flag.
func TestParseServe(t *testing.T) {
	file := writeFile(t, "kubemon.yaml", layeredFile)
	for _, tt := range []struct {
		name string
		args []string
		want []func(*config.Config) // applied in order over config.Default()
		err  string
	}{
		{name: "defaults"},
		{name: "file", args: []string{"--config", file}, want: []func(*config.Config){fromFile}},
		{name: "flags", args: overFileServe, want: []func(*config.Config){fromServeFlags}},
		{name: "flags over file", args: append([]string{"--config", file}, overFileServe...), want: []func(*config.Config){fromFile, fromServeFlags}},
		{name: "flags before the file", args: append(append([]string{}, overFileServe...), "--config", file), want: []func(*config.Config){fromFile, fromServeFlags}},
		{
			name: "one list flag over file",
			args: []string{"--config", file, "--kubelet-address-types", "InternalDNS"},
			want: []func(*config.Config){fromFile, func(c *config.Config) { c.Discovery.AddressTypes = []string{"InternalDNS"} }},
		},
		{
			name: "empty list flag clears the file's list",
			args: []string{"--config", file, "--metrics-drop", ""},
			want: []func(*config.Config){fromFile, func(c *config.Config) { c.MetricsDrop = nil }},
		},
		{
			name: "last of a repeated flag wins over the file",
			args: []string{"--config", file, "--interval", "1m", "--interval", "2m", "--metrics-drop", "a", "--metrics-drop", "b,c"},
			want: []func(*config.Config){fromFile, func(c *config.Config) { c.Interval, c.MetricsDrop = 2*time.Minute, []string{"b", "c"} }},
		},
		{
			name: "a named series set",
			args: []string{"--metrics-set", "large-cluster"},
			want: []func(*config.Config){func(c *config.Config) { c.MetricsSet = "large-cluster" }},
		},
		{
			name: "bool flag turned on over the file",
			args: []string{"--config", writeFile(t, "k.yaml", "scrape: {insecureSkipVerify: false}\ndiscovery: {kubernetes: false}\n"), "--kubelet-insecure-tls", "--kubernetes"},
			want: []func(*config.Config){func(c *config.Config) { c.Scrape.InsecureSkipVerify, c.Discovery.Kubernetes = true, true }},
		},
		{
			name: "allowing empty discovery, by file",
			args: []string{"--config", writeFile(t, "k.yaml", "discovery: {allowEmpty: true}\n")},
			want: []func(*config.Config){func(c *config.Config) { c.Discovery.AllowEmpty = true }},
		},
		{
			name: "allowing empty discovery, by flag",
			args: []string{"--allow-empty-discovery"},
			want: []func(*config.Config){func(c *config.Config) { c.Discovery.AllowEmpty = true }},
		},
		{name: "empty discovery allowed by file, refused by flag", args: []string{"--config", writeFile(t, "k.yaml", "discovery: {allowEmpty: true}\n"), "--allow-empty-discovery=false"}},
		{name: "unknown key in the file", args: []string{"--config", writeFile(t, "k.yaml", "listen: :1\nlisten-addr: :2\n")}, err: "field listen-addr not found"},
		{name: "unknown nested key in the file", args: []string{"--config", writeFile(t, "k.yaml", "scrape:\n  timout: 1s\n")}, err: "field timout not found"},
		{name: "missing file", args: []string{"--config", filepath.Join(t.TempDir(), "none.yaml")}, err: "no such file"},
		{name: "unknown flag", args: []string{"--listen-addr", ":1"}, err: "flag provided but not defined"},
		{name: "bad duration", args: []string{"--interval", "often"}, err: "invalid value \"often\" for flag -interval"},
		{name: "empty list item", args: []string{"--metrics-drop", "a,,b"}, err: "empty item"},
		{name: "arguments", args: []string{"--listen", ":1", "now"}, err: "unexpected arguments: [now]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			got, err := parseServe(tt.args, &stderr)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("parseServe(%q) error %v, want one with %q", tt.args, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseServe(%q): %v\n%s", tt.args, err, &stderr)
			}
			want := config.Default()
			for _, f := range tt.want {
				f(&want)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("parseServe(%q):\n got %+v\nwant %+v", tt.args, got, want)
			}
		})
	}
}

// TestParseDemo: the same layering over demo's defaults, and the simulated
// cluster's flags (flag-only) alongside a --config file.
func TestParseDemo(t *testing.T) {
	file := writeFile(t, "kubemon.yaml", layeredFile)
	defaultSim := sim.Options{Nodes: 3, PodsPerNode: 10, ContainersPerPod: 2, Seed: 1}
	for _, tt := range []struct {
		name    string
		args    []string
		want    []func(*config.Config) // applied in order over demo's defaults
		wantSim func(*sim.Options)
		err     string
	}{
		{name: "defaults"},
		{name: "file", args: []string{"--config", file}, want: []func(*config.Config){fromFile}},
		{name: "flags", args: overFile, want: []func(*config.Config){fromFlags}},
		{name: "flags over file", args: append([]string{"--config", file}, overFile...), want: []func(*config.Config){fromFile, fromFlags}},
		{
			name: "sim flags",
			args: []string{"--sim-mode", "constant", "--nodes", "5", "--seed", "7", "--sim-cadvisor", "lean"},
			wantSim: func(o *sim.Options) {
				o.Mode, o.Nodes, o.Seed, o.Cadvisor = sim.Mode("constant"), 5, 7, sim.CadvisorLean
			},
		},
		{name: "bad cadvisor payload", args: []string{"--sim-cadvisor", "full"}, err: `unknown cadvisor payload "full"`},
		{
			name:    "sim flags with a file",
			args:    []string{"--config", file, "--sim-mode", "constant", "--pods-per-node", "4", "--metrics-drop", "*_uptime_seconds,container_memory_*page_faults*"},
			want:    []func(*config.Config){fromFile, func(c *config.Config) { c.MetricsDrop = []string{"*_uptime_seconds", "container_memory_*page_faults*"} }},
			wantSim: func(o *sim.Options) { o.Mode, o.PodsPerNode = sim.Mode("constant"), 4 },
		},
		{name: "unknown key in the file", args: []string{"--config", writeFile(t, "k.yaml", "nodes: 5\n")}, err: "field nodes not found"},
		{name: "serve-only flag", args: []string{"--nodes-url", "http://x"}, err: "flag provided but not defined"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			got, so, err := parseDemo(tt.args, &stderr)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("parseDemo(%q) error %v, want one with %q", tt.args, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseDemo(%q): %v\n%s", tt.args, err, &stderr)
			}
			want := config.Default()
			demoDefaults(&want)
			for _, f := range tt.want {
				f(&want)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("parseDemo(%q):\n got %+v\nwant %+v", tt.args, got, want)
			}
			wantSim := defaultSim
			if tt.wantSim != nil {
				tt.wantSim(&wantSim)
			}
			if !reflect.DeepEqual(*so, wantSim) {
				t.Errorf("parseDemo(%q) simulator:\n got %+v\nwant %+v", tt.args, *so, wantSim)
			}
		})
	}
}

// TestRun: the commands that return at once.
func TestRun(t *testing.T) {
	for _, tt := range []struct {
		name      string
		args      []string
		stdout    string   // exactly, when not ""
		stderrHas []string // every one
		err       string   // "" for success
		errHas    []string // every one, besides err
		errIsHelp bool
		emptyOut  bool
	}{
		{name: "version", args: []string{"version"}, stdout: version.String() + "\n"},
		{name: "--version", args: []string{"--version"}, stdout: version.String() + "\n"},
		{name: "help", args: []string{"help"}, stdout: usage},
		{name: "-h", args: []string{"-h"}, stdout: usage},
		{name: "no command", args: nil, stderrHas: []string{"Usage:"}, errIsHelp: true, emptyOut: true},
		{name: "unknown command", args: []string{"frobnicate"}, err: `unknown command "frobnicate"`, stderrHas: []string{"Usage:"}, emptyOut: true},
		{name: "serve -h", args: []string{"serve", "-h"}, errIsHelp: true, stderrHas: []string{"-metrics-drop", "-kubelet-address-types", "-config"}, emptyOut: true},
		{name: "demo -h", args: []string{"demo", "-h"}, errIsHelp: true, stderrHas: []string{"-sim-mode", "-metrics-drop"}, emptyOut: true},
		{name: "serve with an unknown flag", args: []string{"serve", "--frobnicate"}, err: "flag provided but not defined: -frobnicate",
			stderrHas: []string{"flag provided but not defined", "Usage of serve"}, emptyOut: true},
		{
			name: "serve with invalid flags",
			args: []string{"serve", "--listen", "8080", "--interval", "0s", "--retention", "1m", "--kubelet-endpoint", "ebpf",
				"--kubelet-scheme", "ftp", "--kubelet-address-types", "InternalIP,Carrier", "--metrics-drop", "contianer_*",
				"--log-level", "loud", "--log-format", "xml", "--nodes-url", "http://x", "--nodes-file", "n.json"},
			err: "invalid configuration",
			errHas: []string{`listen "8080"`, "interval 0s", "retention 1m0s", `scrape.endpoint "ebpf"`, `kubeletScheme "ftp"`,
				`address type "Carrier"`, `metricsDrop "contianer_*"`, `log.level "loud"`, `log.format "xml"`, "discovery: set one of"},
			emptyOut: true,
		},
		{
			name: "serve with an invalid file",
			args: []string{"serve", "--config", writeFile(t, "k.yaml", "interval: 0s\nlog: {format: xml}\n"), "--log-level", "loud"},
			err:  "invalid configuration", errHas: []string{"interval 0s", `log.format "xml"`, `log.level "loud"`}, emptyOut: true,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err := run(ctx, tt.args, &stdout, &stderr)
			switch {
			case tt.errIsHelp:
				if !errors.Is(err, flag.ErrHelp) {
					t.Errorf("run(%q) = %v, want flag.ErrHelp", tt.args, err)
				}
			case tt.err == "":
				if err != nil {
					t.Errorf("run(%q) = %v", tt.args, err)
				}
			case err == nil || !strings.Contains(err.Error(), tt.err):
				t.Errorf("run(%q) = %v, want an error with %q", tt.args, err, tt.err)
			}
			for _, w := range tt.errHas {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("run(%q) = %v, want an error with %q", tt.args, err, w)
				}
			}
			if tt.stdout != "" && stdout.String() != tt.stdout {
				t.Errorf("run(%q) printed %q, want %q", tt.args, stdout.String(), tt.stdout)
			}
			if tt.emptyOut && stdout.Len() > 0 {
				t.Errorf("run(%q) printed %q, want nothing on stdout", tt.args, stdout.String())
			}
			for _, w := range tt.stderrHas {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("run(%q) wrote to stderr:\n%s\nwant %q in it", tt.args, &stderr, w)
				}
			}
		})
	}
}

// TestStringList: String prints what Set reads back.
func TestStringList(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string
		err  bool
	}{
		{"a", []string{"a"}, false},
		{" a , b,c ", []string{"a", "b", "c"}, false},
		{"", nil, false},
		{"  ", nil, false},
		{"a,", nil, true},
		{",a", nil, true},
		{"a, ,b", nil, true},
	} {
		l := stringList{"old"}
		err := l.Set(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("Set(%q): error %v, want error %v", tt.in, err, tt.err)
			continue
		}
		if err != nil {
			if !reflect.DeepEqual(l, stringList{"old"}) {
				t.Errorf("Set(%q) failed but changed the list to %q", tt.in, l)
			}
			continue
		}
		if !reflect.DeepEqual([]string(l), tt.want) {
			t.Errorf("Set(%q) = %q, want %q", tt.in, l, tt.want)
		}
		var again stringList
		if err := again.Set(l.String()); err != nil || !reflect.DeepEqual(again, l) {
			t.Errorf("Set(String()) of %q = %q, %v", l, again, err)
		}
	}
}

// TestServeNeedsDiscovery: serve outside a cluster with nothing to discover
// fails at start, saying how to give it nodes, unless empty discovery is
// allowed (flag or file); with something to discover it starts.
func TestServeNeedsDiscovery(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "") // not in a pod, wherever the test runs
	nodes := writeFile(t, "nodes.json", `{"kind":"NodeList","apiVersion":"v1","items":[]}`)
	allow := writeFile(t, "allow.yaml", "discovery:\n  allowEmpty: true\n")
	howTo := []string{"--kubeconfig", "--kubernetes", "--nodes-url", "--nodes-file", "kubemon demo", "--allow-empty-discovery"}
	for _, tt := range []struct {
		name string
		args []string
		err  []string // nil: starts
	}{
		{name: "nothing to discover", err: howTo},
		{name: "allowed by flag", args: []string{"--allow-empty-discovery"}},
		{name: "allowed by file", args: []string{"--config", allow}},
		{name: "allowed by file, refused by flag", args: []string{"--config", allow, "--allow-empty-discovery=false"}, err: howTo},
		{name: "nodes file", args: []string{"--nodes-file", nodes}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			stderr := &watchWriter{want: "kubemon serving", seen: make(chan struct{})}
			go func() {
				select {
				case <-stderr.seen: // started: stop it
					cancel()
				case <-ctx.Done():
				}
			}()
			args := append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, tt.args...)
			var stdout bytes.Buffer
			err := run(ctx, args, &stdout, stderr)
			started := stderr.started()
			if tt.err == nil {
				if err != nil || !started {
					t.Fatalf("run(%q) = %v, started %v; want it to start\n%s", args, err, started, stderr)
				}
				return
			}
			if err == nil || started {
				t.Fatalf("run(%q) = %v, started %v; want an error at start\n%s", args, err, started, stderr)
			}
			for _, w := range tt.err {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("run(%q) = %v; want it to mention %s", args, err, w)
				}
			}
		})
	}
}

// watchWriter keeps what is written, from any goroutine, and closes seen
// once it contains want.
type watchWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	done bool
}

func (w *watchWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(b)
	if !w.done && strings.Contains(w.buf.String(), w.want) {
		w.done = true
		close(w.seen)
	}
	return n, err
}

func (w *watchWriter) started() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.done
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestParseSinksAndHeapsterFlags: repeatable --sink flags replace the config
// file's sinks (given once, not twice, although flags are parsed twice);
// without --sink the file's stay; --metric_resolution is --interval;
// --source maps Heapster's source onto discovery and scrape settings.
func TestParseSinksAndHeapsterFlags(t *testing.T) {
	file := writeFile(t, "c.yaml", "sinks:\n  - {type: remotewrite, url: \"http://file/api/v1/write\"}\n")
	c, err := parseServe([]string{"--config", file, "--sink", "influxdb:http://a:8086?db=k8s", "--sink", "remotewrite:http://b/api/v1/write?label=cluster:x",
		"--metric_resolution", "30s", "--source", "kubernetes.summary_api:https://kubernetes.default?kubeletHttps=true&kubeletPort=10250"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sinks) != 2 || c.Sinks[0].URL != "http://a:8086" || c.Sinks[0].Database != "k8s" || c.Sinks[1].ExternalLabels["cluster"] != "x" {
		t.Errorf("sinks %+v, want the two flags' only", c.Sinks)
	}
	if c.Interval != 30*time.Second {
		t.Errorf("--metric_resolution 30s: interval %v", c.Interval)
	}
	if !c.Discovery.Kubernetes || c.Discovery.KubeletPort != 10250 || c.Scrape.Endpoint != "summary" {
		t.Errorf("--source: %+v %+v", c.Discovery, c.Scrape)
	}
	c, err = parseServe([]string{"--config", file}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sinks) != 1 || c.Sinks[0].URL != "http://file/api/v1/write" {
		t.Errorf("file's sinks %+v", c.Sinks)
	}
	if _, err := parseServe([]string{"--sink", "influxdb:http://a?nope=1"}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), `option "nope" not supported`) {
		t.Errorf("bad --sink: %v", err)
	}
	if _, err := parseServe([]string{"--source", "kubernetes.summary_api:https://x?insecure=true"}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "insecure=true not supported") {
		t.Errorf("bad --source: %v", err)
	}
}

func TestParseFrontDoor(t *testing.T) {
	c, l, err := parseFrontDoor([]string{"--peer-selector=app=kubemon", "--log-format=json", "--tls-cert-file=/tls/tls.crt", "--tls-private-key-file=/tls/tls.key", "--backend-ca-file=/tls/ca.crt"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":4443" || c.Local != "127.0.0.1:4444" || c.PeerSelector != "app=kubemon" || c.PeerPort != "" || l.Format != "json" ||
		c.TokenFile != "/var/run/secrets/kubemon.io/frontdoor/token" || c.CertFile != "/tls/tls.crt" || c.KeyFile != "/tls/tls.key" || c.BackendCAFile != "/tls/ca.crt" {
		t.Errorf("parsed %+v %+v", c, l)
	}
	tok := filepath.Join(t.TempDir(), "token")
	if err := run(context.Background(), []string{"frontdoor", "--token-file=" + tok}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "token file") {
		t.Errorf("frontdoor with no token file: %v", err)
	}
	if err := os.WriteFile(tok, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"frontdoor", "--token-file=" + tok}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("frontdoor with an empty token file: %v", err)
	}
	if err := run(context.Background(), []string{"frontdoor", "--token-file=" + tok, "--tls-cert-file=x"}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "both") {
		t.Errorf("frontdoor with a certificate and no key: %v", err)
	}
	if _, _, err := parseFrontDoor([]string{"extra"}, &bytes.Buffer{}); err == nil {
		t.Error("a stray argument: no error")
	}
	if err := run(context.Background(), []string{"frontdoor", "--local="}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "--local") {
		t.Errorf("frontdoor with no local address: %v", err)
	}
}
