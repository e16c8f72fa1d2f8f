// Package e2e runs kubemon's binary as a user would and checks what its
// APIs answer. The spine tests need nothing but Go; they run in `make test`.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/testutil/promsel"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kubemon-e2e-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "kubemon")
	build := exec.Command("go", "build", "-o", binary, "github.com/kubemon/kubemon/cmd/kubemon")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building kubemon:", err)
		os.Exit(1)
	}
	code := m.Run()
	downCluster()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running kubemon.
type proc struct {
	cmd   *exec.Cmd
	base  string // http://host:port
	token string // bearer token sent with every request, if set
	mu    sync.Mutex
	logs  strings.Builder
}

var addrRE = regexp.MustCompile(`UI and APIs:\s+(http://\S+)/`)

// startDemo runs `kubemon demo` with args and waits until it prints its address.
func startDemo(t testing.TB, args ...string) *proc {
	t.Helper()
	return launch(t, append([]string{"demo", "--listen", "127.0.0.1:0"}, args...), addrRE, true, 30*time.Second)
}

// launch runs the kubemon binary with args, keeps what it logs (standard
// error), and waits up to timeout for addr to match a line of its standard
// output (onStdout) or of its log: the first submatch is its base URL.
func launch(t testing.TB, args []string, addr *regexp.Regexp, onStdout bool, timeout time.Duration) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, args...)}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.stop(t) })
	found := make(chan string, 1)
	match := func(line string) {
		if m := addr.FindStringSubmatch(line); m != nil {
			select {
			case found <- m[1]:
			default:
			}
		}
	}
	go func() {
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			p.mu.Lock()
			p.logs.WriteString(s.Text() + "\n")
			p.mu.Unlock()
			if !onStdout {
				match(s.Text())
			}
		}
	}()
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			if onStdout {
				match(s.Text())
			}
		}
	}()
	select {
	case p.base = <-found:
	case <-time.After(timeout):
		t.Fatalf("kubemon %s gave no address in %v; logs:\n%s", args[0], timeout, p.Logs())
	}
	return p
}

// Logs returns what the process logged so far.
func (p *proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

func (p *proc) stop(t testing.TB) {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		_ = p.cmd.Wait() // the exit status after SIGTERM is not checked
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
		t.Errorf("kubemon did not stop within 20 s of SIGTERM")
	}
}

func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// waitFor polls f every 200 ms until it returns true or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (p *proc) get(t testing.TB, path string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (p *proc) post(t testing.TB, path string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.base+path, nil)
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %s", path, resp.Status)
	}
}

func (p *proc) getJSON(t testing.TB, path string, into any) {
	t.Helper()
	code, b := p.get(t, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, b)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// sample is one element of a PromQL vector.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s sample) v(t testing.TB) float64 {
	f, err := strconv.ParseFloat(s.Value[1].(string), 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// query runs an instant PromQL query.
func (p *proc) query(t testing.TB, q string) []sample {
	t.Helper()
	var r struct {
		Status string `json:"status"`
		Data   struct {
			ResultType string   `json:"resultType"`
			Result     []sample `json:"result"`
		} `json:"data"`
	}
	p.getJSON(t, "/api/v1/query?query="+url.QueryEscape(q), &r)
	if r.Status != "success" || r.Data.ResultType != "vector" {
		t.Fatalf("query %s: %+v", q, r)
	}
	return r.Data.Result
}

// scalar runs a query whose answer is one sample.
func (p *proc) scalar(t testing.TB, q string) float64 {
	t.Helper()
	r := p.query(t, q)
	if len(r) != 1 {
		t.Fatalf("query %s: %d samples, want 1", q, len(r))
	}
	return r[0].v(t)
}

type truth struct {
	Time       time.Time `json:"time"`
	Containers []struct {
		Node, Namespace, Pod, Container string
		CPUMillicores                   float64 `json:"cpuMillicores"`
		MemoryWorkingSetBytes           uint64  `json:"memoryWorkingSetBytes"`
		RestartCount                    int32   `json:"restartCount"`
		DiskReadBytesPerSecond          float64 `json:"diskReadBytesPerSecond"`
		DiskWriteBytesPerSecond         float64 `json:"diskWriteBytesPerSecond"`
	} `json:"containers"`
}

func (p *proc) metric(t testing.TB, name string) float64 {
	t.Helper()
	_, b := p.get(t, "/metrics")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+" ") {
			f, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return f
		}
	}
	return 0
}

// The tests spell kubemon's series names and label keys through the model
// (the series contract), never by hand: name, sel, match, by, heapster.

// name is kubemon's series name of metric m at level l.
func name(l model.Level, m model.MetricID) string { return model.PromName(l, m) }

// sel is the PromQL selector of metric m at level l with the label
// matchers of the pairs kv: name{k1="v1",...} (see match).
func sel(l model.Level, m model.MetricID, kv ...string) string { return name(l, m) + match(kv...) }

// match is the label matchers of the pairs kv, {k1="v1",...} with the
// values quoted ("" without pairs); a key may end with its operator (=~,
// !=, !~), = when it does not.
func match(kv ...string) string {
	if len(kv) == 0 {
		return ""
	}
	return promsel.Matchers(kv...)
}

// by is the label list of a PromQL grouping or join: "k1, k2, ...".
func by(keys ...string) string { return strings.Join(keys, ", ") }

// anyOf is the regular expression matching every series name of level l
// (for a __name__=~ matcher).
func anyOf(l model.Level) string { return regexp.QuoteMeta(l.Prefix()+"_") + ".+" }

// heapster is metric m's name in Heapster's model API.
func heapster(m model.MetricID) string { return model.Metrics[m].Heapster }

// within reports whether got equals want to within tol, relative to
// |want| (tol 0: exactly). It is written so that a NaN or infinite value on
// either side, as a missing or broken result gives, is never within.
func within(got, want, tol float64) bool {
	return !math.IsInf(got, 0) && !math.IsInf(want, 0) && math.Abs(got-want) <= tol*math.Abs(want)
}
