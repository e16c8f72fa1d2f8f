// Package thanos runs a real Thanos for tests: receivers in one hashring
// (hashmod, a replication factor) and a querier over them that
// deduplicates on the receivers' replica label, every component on free
// ports of 127.0.0.1 (or Options.Host) with its data in t.TempDir(), stopped by PID. The
// binary is Thanos built from its Go module by hack/peers/build.sh thanos.
// Only tests import it.
package thanos

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/testutil/daemon"

	"github.com/kubemon/kubemon/internal/testutil/freeport"
)

// ReplicaLabel is the label each receiver adds to what it stores
// (replica="r0", "r1", …) and the querier deduplicates on.
const ReplicaLabel = "replica"

// TenantLabel is the label Thanos Receive adds to every series (its
// default tenant, "default-tenant"). The querier treats it as a replica
// label too, which strips it: kubemon writes to one tenant.
const TenantLabel = "tenant_id"

// Options configures Start.
type Options struct {
	// Binary is the thanos executable; required.
	Binary string
	// Receivers in the hashring (default 3).
	Receivers int
	// ReplicationFactor of each write (default Receivers).
	ReplicationFactor int
	// ExtraReplicaLabels are more labels the querier deduplicates on
	// (e.g. the label each kubemon member adds to its remote writes).
	ExtraReplicaLabels []string
	// Host is the address every component listens on (default 127.0.0.1):
	// a test cluster's host address, for pods to reach.
	Host string
	// DedupFunc is the querier's --deduplication.func: penalty (the
	// default) or chain (every replica's samples merged, equal timestamps
	// once: what members that hand nodes over to each other need).
	DedupFunc string
}

// Cluster is a running Thanos.
type Cluster struct {
	Receivers []*Component
	Querier   *Component
}

// Component is one Thanos process.
type Component struct {
	t       testing.TB
	name    string
	bin     string
	args    []string
	logPath string
	http    string // host:port of its HTTP API (/-/ready, the query API)
	write   string // host:port of a receiver's remote-write endpoint

	mu   sync.Mutex
	proc *daemon.Process
}

const readyTimeout = 60 * time.Second

// Start runs the receivers and the querier and waits until each answers
// /-/ready and the querier sees every receiver. They are stopped in
// t.Cleanup.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	if o.Binary == "" {
		t.Fatal("thanos: no binary")
	}
	if _, err := os.Stat(o.Binary); err != nil {
		t.Fatalf("thanos: %v (hack/peers/build.sh thanos builds it)", err)
	}
	if o.Receivers <= 0 {
		o.Receivers = 3
	}
	if o.ReplicationFactor <= 0 {
		o.ReplicationFactor = o.Receivers
	}
	host := cmp.Or(o.Host, "127.0.0.1")
	addr := func() string { return freeport.Addr(t, host) }
	dir := t.TempDir()
	type addrs struct{ http, grpc, write, capnp string }
	as := make([]addrs, o.Receivers)
	var ring, endpoints []string
	for i := range as {
		as[i] = addrs{addr(), addr(), addr(), addr()}
		ring = append(ring, fmt.Sprintf(`{"address": %q, "capnproto_address": %q}`, as[i].grpc, as[i].capnp))
		endpoints = append(endpoints, "  - address: "+strconv.Quote(as[i].grpc))
	}
	hashring := filepath.Join(dir, "hashring.json")
	writeFile(t, hashring, `[{"hashring": "default", "endpoints": [`+strings.Join(ring, ", ")+`]}]`)
	c := &Cluster{}
	for i, a := range as {
		name := fmt.Sprintf("receiver-%d", i)
		r := &Component{t: t, name: name, bin: o.Binary, logPath: filepath.Join(dir, name+".log"), http: a.http, write: a.write, args: []string{
			"receive",
			"--http-address=" + a.http, "--grpc-address=" + a.grpc,
			"--remote-write.address=" + a.write, "--receive.capnproto-address=" + a.capnp,
			"--receive.local-endpoint=" + a.grpc,
			"--receive.hashrings-file=" + hashring, "--receive.hashrings-algorithm=hashmod",
			"--receive.replication-factor=" + strconv.Itoa(o.ReplicationFactor),
			"--receive.replication-protocol=protobuf",
			fmt.Sprintf("--label=%s=%q", ReplicaLabel, fmt.Sprintf("r%d", i)),
			"--tsdb.path=" + filepath.Join(dir, name), "--tsdb.retention=1d",
			"--log.level=info",
		}}
		c.Receivers = append(c.Receivers, r)
	}
	qa := addrs{http: addr(), grpc: addr()}
	sd := filepath.Join(dir, "endpoints.yml")
	writeFile(t, sd, "endpoints:\n"+strings.Join(endpoints, "\n")+"\n")
	q := &Component{t: t, name: "querier", bin: o.Binary, logPath: filepath.Join(dir, "querier.log"), http: qa.http, args: []string{
		"query",
		"--http-address=" + qa.http, "--grpc-address=" + qa.grpc,
		"--endpoint.sd-config-file=" + sd,
		"--query.replica-label=" + ReplicaLabel, "--query.replica-label=" + TenantLabel,
		"--deduplication.func=" + cmp.Or(o.DedupFunc, "penalty"),
		"--log.level=info",
	}}
	for _, l := range o.ExtraReplicaLabels {
		q.args = append(q.args, "--query.replica-label="+l)
	}
	c.Querier = q
	t.Cleanup(func() {
		for _, p := range append([]*Component{q}, c.Receivers...) {
			p.stop()
			if t.Failed() {
				t.Logf("thanos: the end of %s's log (%s):\n%s", p.name, p.logPath, daemon.LogTail(p.logPath, 30))
			}
		}
	})
	for _, r := range c.Receivers {
		r.start()
	}
	q.start()
	c.waitStores(o.Receivers)
	return c
}

// waitStores waits until the querier lists n healthy stores.
func (c *Cluster) waitStores(n int) {
	t := c.Querier.t
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		body, err := get(c.Querier.URL() + "/api/v1/stores")
		if err == nil && strings.Count(body, `"lastError":null`) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("thanos: the querier does not see %d healthy receivers after %v: %s %v", n, readyTimeout, body, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// URL is the component's HTTP base URL (the querier's is the Prometheus
// query API's).
func (p *Component) URL() string { return "http://" + p.http }

// WriteURL is a receiver's remote-write endpoint.
func (p *Component) WriteURL() string { return "http://" + p.write + "/api/v1/receive" }

// PID is the running process' id.
func (p *Component) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.proc.PID()
}

// Kill ends the process at once (SIGKILL), as a crash would.
func (p *Component) Kill() {
	p.mu.Lock()
	proc := p.proc
	p.mu.Unlock()
	if proc != nil {
		proc.Kill()
	}
}

// Restart starts the process again on the same addresses and data.
func (p *Component) Restart() {
	p.t.Helper()
	p.stop()
	p.start()
}

func (p *Component) stop() {
	p.mu.Lock()
	proc := p.proc
	p.mu.Unlock()
	if proc != nil {
		proc.Stop(10 * time.Second)
	}
}

func (p *Component) start() {
	p.t.Helper()
	cmd := exec.Command(p.bin, p.args...)
	proc, err := daemon.Start(cmd, p.logPath)
	if err != nil {
		p.t.Fatalf("thanos: starting %s: %v", p.name, err)
	}
	p.mu.Lock()
	p.proc = proc
	p.mu.Unlock()
	deadline := time.Now().Add(readyTimeout)
	for {
		if proc.Exited() {
			p.t.Fatalf("thanos: %s (pid %d) exited before it was ready (%v); its log:\n%s", p.name, proc.PID(), proc.State(), daemon.LogTail(p.logPath, 30))
		}
		if _, err := get(p.URL() + "/-/ready"); err == nil {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("thanos: %s (pid %d) not ready after %v; its log:\n%s", p.name, proc.PID(), readyTimeout, daemon.LogTail(p.logPath, 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// get returns the body of a 200 answer to GET url.
func get(url string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatalf("thanos: %v", err)
	}
}
