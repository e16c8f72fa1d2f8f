package config

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Sink types.
const (
	SinkInfluxDB    = "influxdb"
	SinkRemoteWrite = "remotewrite"
)

// Sink is one destination that gets every sample kubemon stores, from the
// store itself (a sink that is down or slow loses nothing the store still
// holds; see docs/architecture.md).
type Sink struct {
	// Name names the sink in metrics, logs and its position file in
	// <dataDir>/sinks; default the type, then type-2, type-3, ...
	Name string `yaml:"name"`
	// Type is influxdb or remotewrite.
	Type string `yaml:"type"`
	// URL is the server's base URL (InfluxDB: http://host:8086) or, for
	// remote write, the full write URL (http://host:9090/api/v1/write).
	URL string `yaml:"url"`

	// InfluxDB 1.x: the database (default k8s, as Heapster's), the
	// retention policy written to, and its duration: when set, the policy
	// is created (as the default) if missing, as Heapster's retention=.
	Database          string        `yaml:"database"`
	RetentionPolicy   string        `yaml:"retentionPolicy"`
	RetentionDuration time.Duration `yaml:"retentionDuration"`
	// InfluxDB 2.x API (/api/v2/write): organization, bucket and token.
	Org    string `yaml:"org"`
	Bucket string `yaml:"bucket"`
	Token  string `yaml:"token"`
	// WithFields writes Heapster's withfields layout (measurement "cpu",
	// field "usage_rate") instead of a measurement per metric.
	WithFields bool `yaml:"withFields"`
	// ClusterName is the cluster_name tag of every InfluxDB point.
	ClusterName string `yaml:"clusterName"`
	// DisableGzip sends InfluxDB bodies uncompressed.
	DisableGzip bool `yaml:"disableGzip"`

	// User and Password (or PasswordFile) authenticate with HTTP basic
	// auth (InfluxDB 1.x users, remote-write receivers behind a proxy).
	User         string `yaml:"user"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"passwordFile"`
	// BearerTokenFile holds a bearer token sent to a remote-write receiver.
	BearerTokenFile string `yaml:"bearerTokenFile"`
	// ExternalLabels are added to every remote-written series (a series'
	// own label of the same name wins), e.g. {cluster: prod}.
	ExternalLabels map[string]string `yaml:"externalLabels"`
	// Headers are extra HTTP headers of every request (e.g. a tenant ID).
	Headers map[string]string `yaml:"headers"`
	TLS     TLS               `yaml:"tls"`

	// BatchSize is the most samples per request; default 5,000 for
	// InfluxDB (points) and 2,000 for remote write.
	BatchSize int `yaml:"batchSize"`
	// Shards is how many requests run at once; default 1 for InfluxDB, 4
	// for remote write.
	Shards int `yaml:"shards"`
	// Timeout bounds one request; default 30 s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxLag is the sink's budget when it falls behind: older data is
	// skipped, counted and logged; 0 keeps everything the store holds.
	MaxLag time.Duration `yaml:"maxLag"`
	// Events says whether the sink also gets the Kubernetes events
	// (InfluxDB only, in the Heapster eventer's schema): "" or "false" no,
	// "true" metrics and events, "only" events alone (as Heapster's
	// eventer was run). See SinkEvents*.
	Events string `yaml:"events"`
}

// TLS configures a sink's TLS client.
type TLS struct {
	CAFile             string `yaml:"caFile"`
	CertFile           string `yaml:"certFile"`
	KeyFile            string `yaml:"keyFile"`
	ServerName         string `yaml:"serverName"`
	InsecureSkipVerify bool   `yaml:"insecureSkipVerify"`
}

// ParseSink reads Heapster's --sink form, TYPE:URL?OPTIONS, e.g.
//
//	influxdb:http://monitoring-influxdb:8086?db=k8s&user=root&pw=root&retention=7d&withfields=true&cluster_name=prod
//	remotewrite:http://prometheus:9090/api/v1/write?label=cluster:prod&shards=4
//
// Options are Heapster's names (user, pw, db, retention, secure,
// insecure_ssl, withfields, cluster_name, concurrency) and kubemon's own
// (name, rp, org, bucket, token, gzip, batch_size, shards, timeout,
// max_lag, ca_file, cert_file, key_file, server_name, bearer_token_file,
// pw_file, label=k:v, header=k:v, events=true|only). An unknown option is
// an error that names it.
func ParseSink(s string) (Sink, error) {
	typ, rest, ok := strings.Cut(s, ":")
	if !ok || rest == "" {
		return Sink{}, fmt.Errorf("--sink %q: want TYPE:URL, e.g. influxdb:http://monitoring-influxdb:8086?db=k8s", s)
	}
	if typ != SinkInfluxDB && typ != SinkRemoteWrite {
		return Sink{}, fmt.Errorf("--sink %q: sink type %q not supported (influxdb, remotewrite)", s, typ)
	}
	u, err := url.Parse(rest)
	if err != nil {
		return Sink{}, fmt.Errorf("--sink %q: %w", s, err)
	}
	sk := Sink{Type: typ}
	q := u.Query()
	u.RawQuery = ""
	var bad []string
	boolOpt := func(k, v string) bool {
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s=%q: want true or false", k, v))
		}
		return b
	}
	intOpt := func(k, v string) int {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			bad = append(bad, fmt.Sprintf("%s=%q: want a whole number", k, v))
		}
		return n
	}
	durOpt := func(k, v string) time.Duration {
		d, err := parseDuration(v)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s=%q: %v", k, v, err))
		}
		return d
	}
	pair := func(k, v string) (string, string) {
		a, b, ok := strings.Cut(v, ":")
		if !ok || a == "" {
			bad = append(bad, fmt.Sprintf("%s=%q: want name:value", k, v))
		}
		return a, b
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range q[k] {
			switch k {
			case "name":
				sk.Name = v
			case "user":
				sk.User = v
			case "pw":
				sk.Password = v
			case "pw_file":
				sk.PasswordFile = v
			case "db":
				sk.Database = v
			case "rp":
				sk.RetentionPolicy = v
			case "retention":
				sk.RetentionDuration = durOpt(k, v)
				if sk.RetentionPolicy == "" {
					sk.RetentionPolicy = "default"
				}
			case "org":
				sk.Org = v
			case "bucket":
				sk.Bucket = v
			case "token":
				sk.Token = v
			case "withfields":
				sk.WithFields = boolOpt(k, v)
			case "cluster_name":
				sk.ClusterName = v
			case "gzip":
				sk.DisableGzip = !boolOpt(k, v)
			case "secure":
				if boolOpt(k, v) {
					u.Scheme = "https"
				}
			case "insecure_ssl":
				sk.TLS.InsecureSkipVerify = boolOpt(k, v)
			case "ca_file":
				sk.TLS.CAFile = v
			case "cert_file":
				sk.TLS.CertFile = v
			case "key_file":
				sk.TLS.KeyFile = v
			case "server_name":
				sk.TLS.ServerName = v
			case "bearer_token_file":
				sk.BearerTokenFile = v
			case "label":
				if a, b := pair(k, v); a != "" {
					if sk.ExternalLabels == nil {
						sk.ExternalLabels = map[string]string{}
					}
					sk.ExternalLabels[a] = b
				}
			case "header":
				if a, b := pair(k, v); a != "" {
					if sk.Headers == nil {
						sk.Headers = map[string]string{}
					}
					sk.Headers[a] = b
				}
			case "batch_size":
				sk.BatchSize = intOpt(k, v)
			case "shards", "concurrency":
				sk.Shards = intOpt(k, v)
			case "timeout":
				sk.Timeout = durOpt(k, v)
			case "max_lag":
				sk.MaxLag = durOpt(k, v)
			case "events":
				sk.Events = v
			default:
				bad = append(bad, fmt.Sprintf("option %q not supported", k))
			}
		}
	}
	if len(bad) > 0 {
		return Sink{}, fmt.Errorf("--sink %q: %s", s, strings.Join(bad, "; "))
	}
	sk.URL = u.String()
	return sk, nil
}

// parseDuration reads a Go duration or Prometheus/InfluxDB's day and week
// units (7d, 2w), as Heapster's retention= took InfluxDB durations.
func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if v, err := strconv.Atoi(n); err == nil && v >= 0 {
			return time.Duration(v) * 24 * time.Hour, nil
		}
	}
	if n, ok := strings.CutSuffix(s, "w"); ok {
		if v, err := strconv.Atoi(n); err == nil && v >= 0 {
			return time.Duration(v) * 7 * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("want a duration such as 90s, 12h, 7d or 2w")
	}
	return d, nil
}

// NameSinks gives every unnamed sink its default name: its type, then
// type-2, type-3, ... in order.
func NameSinks(sinks []Sink) {
	seen := map[string]int{}
	for i := range sinks {
		if sinks[i].Name != "" {
			seen[sinks[i].Name]++
		}
	}
	for i := range sinks {
		if sinks[i].Name != "" {
			continue
		}
		name := sinks[i].Type
		for n := 2; seen[name] > 0; n++ {
			name = fmt.Sprintf("%s-%d", sinks[i].Type, n)
		}
		sinks[i].Name = name
		seen[name]++
	}
}

// validateSinks reports every problem of the sinks.
func validateSinks(sinks []Sink, bad func(string, ...any)) {
	names := map[string]bool{}
	for i, s := range sinks {
		id := s.Name
		if id == "" {
			id = fmt.Sprintf("#%d", i+1)
		}
		switch s.Type {
		case SinkInfluxDB, SinkRemoteWrite:
		default:
			bad("sinks[%s].type %q: want influxdb or remotewrite", id, s.Type)
		}
		if s.Name != "" {
			if names[s.Name] {
				bad("sinks: name %q used twice", s.Name)
			}
			names[s.Name] = true
			if !validSinkName(s.Name) {
				bad("sinks[%s].name: want letters, digits, '_', '.' and '-'", id)
			}
		}
		u, err := url.Parse(s.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("sinks[%s].url %q: want an http or https URL", id, s.URL)
		}
		if s.Type == SinkInfluxDB && (s.Org != "" || s.Token != "") && s.Bucket == "" {
			bad("sinks[%s]: the InfluxDB 2.x API needs a bucket", id)
		}
		if s.Password != "" && s.PasswordFile != "" {
			bad("sinks[%s]: set password or passwordFile, not both", id)
		}
		if s.BatchSize < 0 || s.Shards < 0 || s.Timeout < 0 || s.MaxLag < 0 || s.RetentionDuration < 0 {
			bad("sinks[%s]: batchSize, shards, timeout, maxLag and retentionDuration must not be negative", id)
		}
		if s.Type == SinkInfluxDB && s.BatchSize > 5000 {
			bad("sinks[%s].batchSize %d: InfluxDB batches hold at most 5000 points", id, s.BatchSize)
		}
		validateSinkEvents(id, s, bad)
	}
}

func validSinkName(s string) bool {
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || (i > 0 && (r == '_' || r == '.' || r == '-'))
		if !ok {
			return false
		}
	}
	return s != ""
}

// ApplySource maps Heapster's --source onto kubemon's discovery and scrape
// settings, e.g.
//
//	kubernetes.summary_api:https://kubernetes.default?kubeletHttps=true&kubeletPort=10250&useServiceAccount=true
//
// kubernetes.summary_api reads /stats/summary and kubernetes (Heapster's
// cAdvisor source) /metrics/cadvisor; both discover from the Kubernetes
// API. Options: inClusterConfig (default true; false needs auth), auth
// (a kubeconfig file), kubeletPort, kubeletHttps (default: kubemon's
// https), insecure=false and useServiceAccount=true (what kubemon does
// anyway). What kubemon does not do is an error that names it: insecure=true
// (the apiserver's certificate is always verified), useServiceAccount=false,
// apiVersion.
func (c *Config) ApplySource(s string) error {
	typ, rest, ok := strings.Cut(s, ":")
	if !ok {
		return fmt.Errorf("--source %q: want TYPE:URL, e.g. kubernetes.summary_api:https://kubernetes.default", s)
	}
	var endpoint string
	switch typ {
	case "kubernetes.summary_api":
		endpoint = "summary"
	case "kubernetes":
		endpoint = "cadvisor"
	default:
		return fmt.Errorf("--source %q: source %q not supported (kubernetes.summary_api, kubernetes)", s, typ)
	}
	u, err := url.Parse(rest)
	if err != nil {
		return fmt.Errorf("--source %q: %w", s, err)
	}
	inCluster := true
	var kubeconfig, scheme string
	port := 0
	var bad []string
	q := u.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := q.Get(k)
		b, berr := strconv.ParseBool(v)
		switch k {
		case "inClusterConfig":
			inCluster = b
		case "auth":
			kubeconfig = v
		case "kubeletPort":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 || n > 65535 {
				bad = append(bad, fmt.Sprintf("kubeletPort=%q: want a port number", v))
			}
			port = n
			continue
		case "kubeletHttps":
			scheme = "http"
			if b {
				scheme = "https"
			}
		case "insecure":
			if b {
				bad = append(bad, "insecure=true not supported: kubemon always verifies the apiserver's certificate (give its CA in the kubeconfig, auth=)")
			}
		case "useServiceAccount":
			if berr == nil && !b {
				bad = append(bad, "useServiceAccount=false not supported: kubemon reaches kubelets with its own credentials (in a pod, its ServiceAccount's)")
			}
		case "apiVersion":
			bad = append(bad, "apiVersion not supported: kubemon uses the apiserver's current API versions")
			continue
		default:
			bad = append(bad, fmt.Sprintf("option %q not supported", k))
			continue
		}
		if k != "auth" && berr != nil {
			bad = append(bad, fmt.Sprintf("%s=%q: want true or false", k, v))
		}
	}
	if !inCluster && kubeconfig == "" {
		bad = append(bad, "inClusterConfig=false needs auth=<kubeconfig file>")
	}
	if len(bad) > 0 {
		return fmt.Errorf("--source %q: %s", s, strings.Join(bad, "; "))
	}
	c.Scrape.Endpoint = endpoint
	c.Discovery.Kubernetes = true
	c.Discovery.Kubeconfig = kubeconfig
	c.Discovery.KubeletPort = port
	if scheme != "" {
		c.Discovery.KubeletScheme = scheme
	}
	c.Discovery.APIServer = ""
	if h := u.Hostname(); u.Host != "" && !inClusterName(h) {
		c.Discovery.APIServer = u.Scheme + "://" + u.Host
	}
	return nil
}

// inClusterName reports whether host names the apiserver's in-cluster
// Service, which the in-cluster configuration reaches by its address.
func inClusterName(host string) bool {
	switch host {
	case "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "kubernetes":
		return true
	}
	return false
}
