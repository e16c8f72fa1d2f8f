// Package amserver runs a real Alertmanager for tests: Debian's
// /usr/bin/prometheus-alertmanager (0.25, installed by hack/deps.sh) with
// one route to a receiver that sends nowhere, no clustering (its gossip
// port would listen on every interface), its state in t.TempDir() and its
// HTTP API on a free port of 127.0.0.1. Tests point kubemon at URL() and
// read what arrived with Alerts (API v2). Only tests import it.
package amserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/testutil/daemon"

	"github.com/kubemon/kubemon/internal/testutil/freeport"
)

// Binary is the Alertmanager the helper runs.
const Binary = "/usr/bin/prometheus-alertmanager"

// InstallHint is how to get Binary.
const InstallHint = "hack/deps.sh (or: apt-get install prometheus-alertmanager)"

const readyTimeout = 60 * time.Second

// config routes every alert to a receiver without integrations, grouped
// per alert and sent at once: the API shows alerts as they arrive.
const config = `route:
  receiver: none
  group_by: ['...']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: none
`

// Server is a running Alertmanager.
type Server struct {
	t       testing.TB
	dir     string
	addr    string
	logPath string
	client  *http.Client

	mu   sync.Mutex
	proc *daemon.Process
}

// Alert is an alert as Alertmanager's API v2 lists it.
type Alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	UpdatedAt    time.Time         `json:"updatedAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
	Status       struct {
		State string `json:"state"` // active, suppressed or unprocessed
	} `json:"status"`
}

// Start runs Alertmanager and waits until /-/ready answers. It is stopped
// in t.Cleanup (SIGTERM, then SIGKILL after 10 s). When Binary is missing
// the test is skipped, naming the command that installs it.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		t.Skipf("SKIPPED: Alertmanager is needed for this test and %s is missing (%v); install it with %s", Binary, err, InstallHint)
	}
	dir := t.TempDir()
	s := &Server{t: t, dir: dir, logPath: filepath.Join(dir, "alertmanager.log"), client: &http.Client{Timeout: 30 * time.Second}}
	if err := os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("amserver: the end of Alertmanager's log (%s):\n%s", s.logPath, daemon.LogTail(s.logPath, 40))
		}
	})
	for attempt := 1; ; attempt++ {
		s.addr = freeport.Addr(t, "127.0.0.1")
		if s.start(attempt < 3) {
			return s
		}
		t.Logf("amserver: %s was taken before Alertmanager bound it; trying another port", s.addr)
	}
}

func (s *Server) start(mayMove bool) bool {
	s.t.Helper()
	cmd := exec.Command(Binary,
		"--config.file="+filepath.Join(s.dir, "alertmanager.yml"),
		"--storage.path="+filepath.Join(s.dir, "data"),
		"--web.listen-address="+s.addr,
		"--cluster.listen-address=", // no gossip listener (it would bind every interface)
		"--log.level=info",
	)
	cmd.Dir = s.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // killed with the test binary
	proc, err := daemon.Start(cmd, s.logPath)
	if err != nil {
		s.t.Fatalf("amserver: starting %s: %v", Binary, err)
	}
	s.mu.Lock()
	s.proc = proc
	s.mu.Unlock()
	deadline := time.Now().Add(readyTimeout)
	for {
		if proc.Exited() {
			if mayMove && strings.Contains(daemon.LogTail(s.logPath, 20), "address already in use") {
				return false
			}
			s.t.Fatalf("amserver: Alertmanager (pid %d) exited before it was ready (%v); its log:\n%s", proc.PID(), proc.State(), daemon.LogTail(s.logPath, 40))
		}
		if s.ready() {
			return true
		}
		if time.Now().After(deadline) {
			s.Stop()
			s.t.Fatalf("amserver: Alertmanager (pid %d) not ready at %s after %v; its log:\n%s", proc.PID(), s.URL(), readyTimeout, daemon.LogTail(s.logPath, 40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *Server) ready() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/-/ready", nil)
	resp, err := s.client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

// URL is the Alertmanager's base URL, http://127.0.0.1:<port>.
func (s *Server) URL() string { return "http://" + s.addr }

// PID is the process' id.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc.PID()
}

// Stop ends the process (SIGTERM, SIGKILL after 10 s) and waits for it.
func (s *Server) Stop() {
	s.mu.Lock()
	proc := s.proc
	s.mu.Unlock()
	if proc != nil {
		proc.Stop(10 * time.Second)
	}
}

// Alerts lists the alerts Alertmanager holds that have not ended
// (GET /api/v2/alerts): a resolved alert leaves the list.
func (s *Server) Alerts() ([]Alert, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/api/v2/alerts", nil)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/v2/alerts: %s: %s", resp.Status, b)
	}
	var out []Alert
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("GET /api/v2/alerts: %w: %s", err, b)
	}
	return out, nil
}
