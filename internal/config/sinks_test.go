package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseSink(t *testing.T) {
	s, err := ParseSink("influxdb:http://monitoring-influxdb:8086?db=k8s&user=root&pw=secret&retention=7d&withfields=true&cluster_name=prod&concurrency=2")
	if err != nil {
		t.Fatal(err)
	}
	want := Sink{Type: SinkInfluxDB, URL: "http://monitoring-influxdb:8086", Database: "k8s", User: "root", Password: "secret",
		RetentionPolicy: "default", RetentionDuration: 7 * 24 * time.Hour, WithFields: true, ClusterName: "prod", Shards: 2}
	if s.Type != want.Type || s.URL != want.URL || s.Database != want.Database || s.User != want.User || s.Password != want.Password ||
		s.RetentionPolicy != want.RetentionPolicy || s.RetentionDuration != want.RetentionDuration || !s.WithFields || s.ClusterName != want.ClusterName || s.Shards != 2 {
		t.Errorf("got %+v\nwant %+v", s, want)
	}
	s, err = ParseSink("remotewrite:https://mimir:8080/api/v1/push?label=cluster:prod&label=region:eu&header=X-Scope-OrgID:team&bearer_token_file=/t&batch_size=500&shards=8&insecure_ssl=true&name=mimir")
	if err != nil {
		t.Fatal(err)
	}
	if s.URL != "https://mimir:8080/api/v1/push" || s.ExternalLabels["cluster"] != "prod" || s.ExternalLabels["region"] != "eu" ||
		s.Headers["X-Scope-OrgID"] != "team" || s.BearerTokenFile != "/t" || s.BatchSize != 500 || s.Shards != 8 || !s.TLS.InsecureSkipVerify || s.Name != "mimir" {
		t.Errorf("remote write: %+v", s)
	}
	if s, err = ParseSink("influxdb:http://h:8086?secure=true"); err != nil || s.URL != "https://h:8086" {
		t.Errorf("secure=true: %+v %v", s, err)
	}
	for in, msg := range map[string]string{
		"influxdb":                         "want TYPE:URL",
		"kafka:tcp://k:9092":               `sink type "kafka" not supported`,
		"influxdb:http://h?db=k8s&bogus=1": `option "bogus" not supported`,
		"influxdb:http://h?withfields=yes": `withfields="yes": want true or false`,
		"remotewrite:http://h?label=x":     `label="x": want name:value`,
		"influxdb:http://h?retention=soon": `retention="soon"`,
	} {
		if _, err := ParseSink(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseSink(%q) = %v, want an error containing %q", in, err, msg)
		}
	}
}

func TestNameAndValidateSinks(t *testing.T) {
	sinks := []Sink{{Type: SinkInfluxDB, URL: "http://a:8086"}, {Type: SinkRemoteWrite, URL: "http://b/api/v1/write"}, {Type: SinkInfluxDB, URL: "http://c:8086"}, {Name: "influxdb-2", Type: SinkInfluxDB, URL: "http://d:8086"}}
	NameSinks(sinks)
	names := []string{sinks[0].Name, sinks[1].Name, sinks[2].Name, sinks[3].Name}
	if strings.Join(names, " ") != "influxdb remotewrite influxdb-3 influxdb-2" {
		t.Errorf("names %v", names)
	}
	c := Default()
	c.Sinks = []Sink{{Name: "x", Type: "kafka", URL: "ftp://h"}, {Name: "x", Type: SinkInfluxDB, URL: "http://h", Org: "o"}, {Name: "bad/name", Type: SinkRemoteWrite, URL: "http://h", BatchSize: -1}}
	var msgs []string
	for _, err := range c.Validate() {
		msgs = append(msgs, err.Error())
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{`sinks[x].type "kafka"`, `sinks[x].url "ftp://h"`, `name "x" used twice`, "2.x API needs a bucket", "sinks[bad/name].name", "must not be negative"} {
		if !strings.Contains(all, want) {
			t.Errorf("validation lacks %q:\n%s", want, all)
		}
	}
}

func TestApplySource(t *testing.T) {
	c := Default()
	if err := c.ApplySource("kubernetes.summary_api:https://kubernetes.default?kubeletHttps=true&kubeletPort=10250&insecure=false&useServiceAccount=true"); err != nil {
		t.Fatal(err)
	}
	if !c.Discovery.Kubernetes || c.Discovery.KubeletPort != 10250 || c.Discovery.KubeletScheme != "https" || c.Scrape.Endpoint != "summary" || c.Discovery.APIServer != "" {
		t.Errorf("mapped onto %+v %+v", c.Discovery, c.Scrape)
	}
	if errs := c.Validate(); len(errs) != 0 {
		t.Errorf("mapped config invalid: %v", errs)
	}
	c = Default()
	if err := c.ApplySource("kubernetes:https://10.0.0.1:6443?inClusterConfig=false&auth=/etc/kube/config&kubeletHttps=false"); err != nil {
		t.Fatal(err)
	}
	if c.Discovery.APIServer != "https://10.0.0.1:6443" || c.Discovery.Kubeconfig != "/etc/kube/config" || c.Discovery.KubeletScheme != "http" || c.Scrape.Endpoint != "cadvisor" {
		t.Errorf("mapped onto %+v %+v", c.Discovery, c.Scrape)
	}
	for in, msg := range map[string]string{
		"kubernetes.summary_api:https://kubernetes.default?insecure=true":           "insecure=true not supported",
		"kubernetes.summary_api:https://kubernetes.default?useServiceAccount=false": "useServiceAccount=false not supported",
		"kubernetes.summary_api:https://kubernetes.default?apiVersion=v1":           "apiVersion not supported",
		"kubernetes.summary_api:https://kubernetes.default?kubeletPort=http":        `kubeletPort="http"`,
		"kubernetes.summary_api:https://kubernetes.default?inClusterConfig=false":   "needs auth=",
		"kubernetes.summary_api:https://kubernetes.default?frobnicate=1":            `option "frobnicate" not supported`,
		"kubelet:https://x": `source "kubelet" not supported`,
	} {
		c := Default()
		if err := c.ApplySource(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ApplySource(%q) = %v, want %q", in, err, msg)
		}
	}
}
