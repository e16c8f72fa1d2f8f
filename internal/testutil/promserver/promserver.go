// Package promserver runs a real Prometheus server for tests: Debian's
// /usr/bin/prometheus (2.42, installed by hack/deps.sh) with its remote
// write receiver enabled, no scrape jobs, its TSDB in t.TempDir() and its
// HTTP API on a free port of 127.0.0.1. Tests write to WriteURL() and read
// back with Query and QueryRange; Kill and Restart simulate an outage.
// Only tests import it.
package promserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/kubemon/kubemon/internal/testutil/daemon"

	"github.com/kubemon/kubemon/internal/testutil/freeport"
)

// Binary is the Prometheus the helper runs.
const Binary = "/usr/bin/prometheus"

// InstallHint is how to get Binary.
const InstallHint = "hack/deps.sh (or: apt-get install prometheus)"

// readyTimeout bounds a start (WAL replay included) on a loaded machine.
const readyTimeout = 90 * time.Second

// Config is optional settings of StartWith.
type Config struct {
	// TLSCertFile and TLSKeyFile, when set, make Prometheus serve HTTPS
	// with this certificate (--web.config.file's tls_server_config). The
	// helper's own requests (readiness, queries) do not verify it.
	TLSCertFile string
	TLSKeyFile  string
	// BasicAuthUser with BasicAuthHash (the bcrypt hash of
	// BasicAuthPassword) make Prometheus require basic authentication
	// (--web.config.file's basic_auth_users). The helper's own requests
	// send BasicAuthPassword.
	BasicAuthUser     string
	BasicAuthHash     string
	BasicAuthPassword string
	// OutOfOrderWindow, when positive, is the TSDB's
	// out_of_order_time_window: samples up to this much older than a
	// series' newest are accepted instead of refused as out of order.
	OutOfOrderWindow time.Duration
}

// Server is a running (or killed) Prometheus.
type Server struct {
	t       testing.TB
	cfg     Config
	dir     string // data directory
	addr    string // 127.0.0.1:port
	scheme  string
	args    []string
	logPath string
	client  *http.Client

	mu   sync.Mutex
	proc *daemon.Process
}

// Start runs Prometheus with default settings; see StartWith.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Config{})
}

// StartWith runs Prometheus and waits until /-/ready answers. It is
// stopped in t.Cleanup (SIGTERM, then SIGKILL after 10 s). When Binary is
// missing the test is skipped, naming the command that installs it.
func StartWith(t testing.TB, cfg Config) *Server {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		t.Skipf("SKIPPED: Prometheus is needed for this test and %s is missing (%v); install it with %s", Binary, err, InstallHint)
	}
	dir := t.TempDir()
	s := &Server{t: t, cfg: cfg, dir: dir, scheme: "http", logPath: filepath.Join(dir, "prometheus.log")}
	conf := "global:\n  scrape_interval: 1m\n"
	if cfg.OutOfOrderWindow > 0 {
		conf += fmt.Sprintf("storage:\n  tsdb:\n    out_of_order_time_window: %dms\n", cfg.OutOfOrderWindow.Milliseconds())
	}
	confPath := filepath.Join(dir, "prometheus.yml")
	write(t, confPath, conf)
	dataDir := filepath.Join(dir, "data")

	tr := http.DefaultTransport.(*http.Transport).Clone()
	var web strings.Builder
	if cfg.TLSCertFile != "" {
		s.scheme = "https"
		// The helper's own probes and queries of a test server: not verified.
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
		fmt.Fprintf(&web, "tls_server_config:\n  cert_file: %q\n  key_file: %q\n", cfg.TLSCertFile, cfg.TLSKeyFile)
	}
	if cfg.BasicAuthUser != "" {
		fmt.Fprintf(&web, "basic_auth_users:\n  %q: %q\n", cfg.BasicAuthUser, cfg.BasicAuthHash)
	}
	s.client = &http.Client{Transport: tr, Timeout: 30 * time.Second}

	s.args = []string{
		"--config.file=" + confPath,
		"--storage.tsdb.path=" + dataDir,
		"--web.enable-remote-write-receiver",
		"--log.level=info",
	}
	if web.Len() > 0 {
		webPath := filepath.Join(dir, "web.yml")
		write(t, webPath, web.String())
		s.args = append(s.args, "--web.config.file="+webPath)
	}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("promserver: the end of Prometheus' log (%s):\n%s", s.logPath, s.logTail(4000))
		}
	})
	// The free port may be taken by another process before Prometheus
	// binds it: then another one is tried.
	for attempt := 1; ; attempt++ {
		s.addr = freeport.Addr(t, "127.0.0.1")
		if s.start(attempt < 3) {
			return s
		}
		t.Logf("promserver: %s was taken before Prometheus bound it; trying another port", s.addr)
	}
}

func write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatalf("promserver: %v", err)
	}
}

// readyLine is what Prometheus logs when it serves.
const readyLine = "Server is ready to receive web requests."

// start runs the process with s.args on s.addr and waits until it logs
// that it is ready and /-/ready answers (so a server of another process on
// the same port is not taken for it). When mayMove is true and Prometheus
// exits because the address is in use, start returns false.
func (s *Server) start(mayMove bool) bool {
	s.t.Helper()
	readyBefore := strings.Count(s.logTail(-1), readyLine)
	cmd := exec.Command(Binary, append(slices.Clone(s.args), "--web.listen-address="+s.addr)...)
	cmd.Dir = s.dir
	cmd.SysProcAttr = procAttr()
	proc, err := daemon.Start(cmd, s.logPath)
	if err != nil {
		s.t.Fatalf("promserver: starting %s: %v", Binary, err)
	}
	s.mu.Lock()
	s.proc = proc
	s.mu.Unlock()

	deadline := time.Now().Add(readyTimeout)
	for {
		if proc.Exited() {
			if mayMove && strings.Contains(s.logTail(4000), "address already in use") {
				return false
			}
			s.t.Fatalf("promserver: Prometheus (pid %d) exited before it was ready (%v); its log:\n%s", proc.PID(), proc.State(), s.logTail(4000))
		}
		if strings.Count(s.logTail(-1), readyLine) > readyBefore && s.ready() {
			return true
		}
		if time.Now().After(deadline) {
			s.stop()
			s.t.Fatalf("promserver: Prometheus (pid %d) not ready at %s after %v; its log:\n%s", proc.PID(), s.URL(), readyTimeout, s.logTail(4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *Server) ready() bool {
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/-/ready", nil)
	s.auth(req)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := s.client.Do(req.WithContext(ctx))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

func (s *Server) auth(req *http.Request) {
	if s.cfg.BasicAuthUser != "" {
		req.SetBasicAuth(s.cfg.BasicAuthUser, s.cfg.BasicAuthPassword)
	}
}

// stop ends the process: SIGTERM, then SIGKILL after 10 s. It does
// nothing when the process has exited.
func (s *Server) stop() {
	s.mu.Lock()
	proc := s.proc
	s.mu.Unlock()
	if proc != nil {
		proc.Stop(10 * time.Second)
	}
}

// Kill ends Prometheus at once with SIGKILL (no shutdown: the TSDB keeps
// only what its WAL holds) and waits for it to exit. The address then
// refuses connections until Restart.
func (s *Server) Kill() {
	s.t.Helper()
	s.mu.Lock()
	proc := s.proc
	s.mu.Unlock()
	if proc != nil {
		proc.Kill()
	}
}

// Restart starts Prometheus again (after Kill, or stopping it first with
// SIGTERM if it runs) on the same address and data directory, and waits
// until it is ready (the WAL replayed).
func (s *Server) Restart() {
	s.t.Helper()
	s.stop()
	s.start(false)
}

// PID is the running process' id.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc.PID()
}

// URL is the server's base URL, e.g. http://127.0.0.1:40123.
func (s *Server) URL() string { return s.scheme + "://" + s.addr }

// WriteURL is the remote write receiver's endpoint.
func (s *Server) WriteURL() string { return s.URL() + "/api/v1/write" }

// DataDir is the TSDB's directory.
func (s *Server) DataDir() string { return filepath.Join(s.dir, "data") }

// Query runs an instant PromQL query at the given time and returns its
// result: model.Vector, model.Matrix (a range selector), *model.Scalar or
// *model.String. Any error fails the test.
func (s *Server) Query(t testing.TB, promql string, at time.Time) model.Value {
	t.Helper()
	v := url.Values{"query": {promql}, "time": {formatTime(at)}}
	return s.api(t, "/api/v1/query", v)
}

// QueryRange runs a range query and returns its matrix. Any error fails
// the test.
func (s *Server) QueryRange(t testing.TB, promql string, start, end time.Time, step time.Duration) model.Matrix {
	t.Helper()
	v := url.Values{
		"query": {promql},
		"start": {formatTime(start)},
		"end":   {formatTime(end)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}
	m, ok := s.api(t, "/api/v1/query_range", v).(model.Matrix)
	if !ok {
		t.Fatalf("promserver: query_range %q did not answer a matrix", promql)
	}
	return m
}

func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}

// api POSTs a query to the HTTP API and decodes its data.
func (s *Server) api(t testing.TB, path string, form url.Values) model.Value {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("promserver: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	s.auth(req)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("promserver: %s %q: %v", path, form.Get("query"), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("promserver: %s %q: reading the answer: %v", path, form.Get("query"), err)
	}
	v, err := decode(body)
	if err != nil {
		t.Fatalf("promserver: %s %q: %s: %v (%s)", path, form.Get("query"), resp.Status, err, bytes.TrimSpace(body))
	}
	return v
}

// decode parses an API answer's data.
func decode(body []byte) (model.Value, error) {
	var r struct {
		Status    string `json:"status"`
		Error     string `json:"error"`
		ErrorType string `json:"errorType"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", r.ErrorType, r.Error)
	}
	var v model.Value
	switch r.Data.ResultType {
	case "vector":
		v = &model.Vector{}
	case "matrix":
		v = &model.Matrix{}
	case "scalar":
		v = &model.Scalar{}
	case "string":
		v = &model.String{}
	default:
		return nil, fmt.Errorf("unknown result type %q", r.Data.ResultType)
	}
	if err := json.Unmarshal(r.Data.Result, v); err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case *model.Vector:
		return *x, nil
	case *model.Matrix:
		return *x, nil
	}
	return v, nil
}

// logTail is the end of Prometheus' log, at most n bytes (all of it when n
// is negative).
func (s *Server) logTail(n int64) string {
	f, err := os.Open(s.logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	if off := st.Size() - n; n >= 0 && off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return err.Error()
		}
	}
	b, err := io.ReadAll(f)
	if err != nil && !errors.Is(err, io.EOF) {
		return err.Error()
	}
	return string(b)
}
