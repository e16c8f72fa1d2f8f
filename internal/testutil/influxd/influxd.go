// Package influxd runs a real InfluxDB 1.x server (influxd) for tests: on
// free loopback ports, with its configuration and data under the test's
// temporary directory, stopped when the test ends. Only tests import it.
//
// Two binaries are known: Debian's /usr/bin/influxd (1.6.7, package
// influxdb, installed by hack/deps.sh) and InfluxDB 1.8.10 built by
// hack/influxdb.sh, which also serves the 2.x write API (/api/v2/write).
// A test whose binary is missing is skipped with the command that installs
// it.
package influxd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/testutil/daemon"

	"github.com/kubemon/kubemon/internal/testutil/freeport"
)

// Debian is the path of Debian's influxd (InfluxDB 1.6.7).
const Debian = "/usr/bin/influxd"

// Version18 is the InfluxDB version hack/influxdb.sh builds.
const Version18 = "v1.8.10"

// Env18 is the environment variable that names the InfluxDB 1.8 binary
// (default: where hack/influxdb.sh puts it).
const Env18 = "KUBEMON_INFLUXD18"

// Binary18 is the path of InfluxDB 1.8's influxd: $KUBEMON_INFLUXD18, or
// hack/influxdb.sh's $KUBEMON_CACHE/influxdb-v1.8.10/influxd.
func Binary18() string {
	if p := os.Getenv(Env18); p != "" {
		return p
	}
	cache := os.Getenv("KUBEMON_CACHE")
	if cache == "" {
		if os.Getuid() == 0 {
			cache = "/var/cache/kubemon"
		} else if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache", "kubemon")
		}
	}
	return filepath.Join(cache, "influxdb-"+Version18, "influxd")
}

// Server is a running influxd.
type Server struct {
	// URL is the HTTP API's base URL, e.g. http://127.0.0.1:38123.
	URL string
	// User and Password are the admin user's when authentication is on.
	User, Password string

	t       testing.TB
	bin     string
	dir     string
	conf    string
	logPath string

	mu   sync.Mutex
	proc *daemon.Process
}

// Option configures Start.
type Option func(*Server)

// WithAuth turns authentication on, with an admin user of that name and
// password (created through the API, as InfluxDB allows while no admin
// exists).
func WithAuth(user, password string) Option {
	return func(s *Server) { s.User, s.Password = user, password }
}

// Start runs bin (Debian or Binary18()) until the test ends and waits until
// it answers /ping. A missing binary skips the test.
func Start(t testing.TB, bin string, opts ...Option) *Server {
	t.Helper()
	if _, err := os.Stat(bin); err != nil {
		install := "hack/deps.sh (Debian's package influxdb)"
		if bin != Debian {
			install = "hack/influxdb.sh (builds InfluxDB " + Version18 + " into the cache; or set " + Env18 + ")"
		}
		t.Skipf("SKIPPED: influxd binary %s is missing (%v): install it with %s", bin, err, install)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	for _, o := range opts {
		o(s)
	}
	s.logPath = filepath.Join(s.dir, "influxd.log")
	t.Cleanup(s.stop)
	var err error
	for try := 0; try < 3; try++ { // a free port may be taken before influxd binds it
		var httpPort, bindPort int
		if httpPort, bindPort, err = freePorts(); err != nil {
			t.Fatalf("influxd: free ports: %v", err)
		}
		s.URL = "http://127.0.0.1:" + strconv.Itoa(httpPort)
		if err = s.writeConfig(httpPort, bindPort); err != nil {
			t.Fatalf("influxd: %v", err)
		}
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("influxd: %v\n%s", err, s.logTail())
	}
	if s.User != "" {
		q := fmt.Sprintf("CREATE USER %q WITH PASSWORD '%s' WITH ALL PRIVILEGES", s.User, strings.ReplaceAll(s.Password, "'", `\'`))
		if _, err := s.query("", q, false); err != nil {
			t.Fatalf("influxd: creating the admin user: %v", err)
		}
	}
	return s
}

// freePorts are two free ports below the ephemeral range, where Restart
// finds them still free (package freeport).
func freePorts() (int, int, error) {
	a, err := freeport.Stable("127.0.0.1")
	if err != nil {
		return 0, 0, err
	}
	for {
		b, err := freeport.Stable("127.0.0.1")
		if err != nil || b != a {
			return a, b, err
		}
	}
}

func (s *Server) writeConfig(httpPort, bindPort int) error {
	d := func(name string) string { return strconv.Quote(filepath.Join(s.dir, name)) }
	conf := fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"

[meta]
  dir = %s
  logging-enabled = false

[data]
  dir = %s
  wal-dir = %s
  query-log-enabled = false
  trace-logging-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:%d"
  auth-enabled = %t
  log-enabled = false
  write-tracing = false
  pprof-enabled = false

[monitor]
  store-enabled = false

[continuous_queries]
  enabled = false

[subscriber]
  enabled = false

[logging]
  level = "warn"
`, bindPort, d("meta"), d("data"), d("wal"), httpPort, s.User != "")
	s.conf = filepath.Join(s.dir, "influxdb.conf")
	return os.WriteFile(s.conf, []byte(conf), 0o600)
}

// start runs influxd and waits up to 60 seconds for /ping.
func (s *Server) start() error {
	cmd := exec.Command(s.bin, "-config", s.conf)
	cmd.Env = append(os.Environ(), "INFLUXDB_REPORTING_DISABLED=true")
	proc, err := daemon.Start(cmd, s.logPath)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.proc = proc
	s.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		if proc.Exited() {
			return fmt.Errorf("%s exited before answering /ping: %s", s.bin, proc.State())
		}
		resp, err := client.Get(s.URL + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return nil
			}
			err = fmt.Errorf("answered %s", resp.Status)
		}
		if time.Now().After(deadline) {
			proc.Kill()
			return fmt.Errorf("%s did not answer %s/ping within 60s (last: %w)", s.bin, s.URL, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends sig to the server's process and waits up to 5 seconds for
// it to exit; it reports whether it did.
func (s *Server) kill(sig syscall.Signal) bool {
	s.mu.Lock()
	proc := s.proc
	s.mu.Unlock()
	return proc == nil || proc.Signal(sig, 5*time.Second)
}

// stop ends the server: SIGTERM, then SIGKILL after 5 seconds. The log's
// tail goes to the test's output when the test failed.
func (s *Server) stop() {
	if !s.kill(syscall.SIGTERM) {
		s.kill(syscall.SIGKILL)
	}
	if s.t.Failed() {
		s.t.Logf("influxd log (%s), last lines:\n%s", s.logPath, s.logTail())
	}
}

// Kill ends the server at once (SIGKILL), as a crash would.
func (s *Server) Kill() {
	s.t.Helper()
	if !s.kill(syscall.SIGKILL) {
		s.t.Fatalf("influxd: still running 5s after SIGKILL")
	}
}

// Restart starts the server again after Kill (or stops it first), on the
// same ports with the same data.
func (s *Server) Restart() {
	s.t.Helper()
	if !s.kill(syscall.SIGTERM) {
		s.Kill()
	}
	if err := s.start(); err != nil {
		s.t.Fatalf("influxd: restart: %v\n%s", err, s.logTail())
	}
}

func (s *Server) logTail() string { return daemon.LogTail(s.logPath, 40) }

// Series is one series of a query's answer.
type Series struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	// Values are the rows; numbers are json.Number, times Unix
	// milliseconds (the query asks for epoch=ms).
	Values [][]any `json:"values"`
}

// Column returns the index of the named column, or -1.
func (s Series) Column(name string) int {
	for i, c := range s.Columns {
		if c == name {
			return i
		}
	}
	return -1
}

// Floats returns a column's values as floats; a null is NaN.
func (s Series) Floats(column string) ([]float64, error) {
	c := s.Column(column)
	if c < 0 {
		return nil, fmt.Errorf("series %s %v has no column %q (columns %v)", s.Name, s.Tags, column, s.Columns)
	}
	out := make([]float64, len(s.Values))
	for i, row := range s.Values {
		switch v := row[c].(type) {
		case json.Number:
			f, err := strconv.ParseFloat(string(v), 64)
			if err != nil {
				return nil, err
			}
			out[i] = f
		case nil:
			out[i] = math.NaN()
		default:
			return nil, fmt.Errorf("series %s column %s row %d: %v (%T) is not a number", s.Name, column, i, v, v)
		}
	}
	return out, nil
}

// Times returns the rows' times (Unix milliseconds).
func (s Series) Times() ([]int64, error) {
	c := s.Column("time")
	if c < 0 {
		return nil, fmt.Errorf("series %s has no time column", s.Name)
	}
	out := make([]int64, len(s.Values))
	for i, row := range s.Values {
		n, ok := row[c].(json.Number)
		if !ok {
			return nil, fmt.Errorf("series %s row %d: time %v (%T)", s.Name, i, row[c], row[c])
		}
		t, err := n.Int64()
		if err != nil {
			return nil, err
		}
		out[i] = t
	}
	return out, nil
}

// Query runs InfluxQL (one statement, or several separated by ";") in
// database db ("" for none) and returns the series of every statement's
// answer, in order; a failed request or statement fails the test.
func (s *Server) Query(t testing.TB, db, influxql string) []Series {
	t.Helper()
	out, err := s.query(db, influxql, true)
	if err != nil {
		t.Fatalf("influxd: %s: %v", influxql, err)
	}
	return out
}

func (s *Server) query(db, q string, auth bool) ([]Series, error) {
	form := url.Values{"q": {q}, "epoch": {"ms"}}
	if db != "" {
		form.Set("db", db)
	}
	req, err := http.NewRequest(http.MethodPost, s.URL+"/query", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if auth && s.User != "" {
		req.SetBasicAuth(s.User, s.Password)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
	}
	var res struct {
		Error   string `json:"error"`
		Results []struct {
			Error   string   `json:"error"`
			Partial bool     `json:"partial"`
			Series  []Series `json:"series"`
		} `json:"results"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&res); err != nil {
		return nil, fmt.Errorf("decoding %q: %w", body, err)
	}
	if res.Error != "" {
		return nil, errors.New(res.Error)
	}
	var out []Series
	for i, r := range res.Results {
		if r.Error != "" {
			return nil, fmt.Errorf("statement %d: %s", i, r.Error)
		}
		if r.Partial {
			return nil, fmt.Errorf("statement %d: partial answer (the server's max-row-limit)", i)
		}
		out = append(out, r.Series...)
	}
	return out, nil
}
