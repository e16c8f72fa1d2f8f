package promserver

import (
	"path/filepath"
	"strings"
	"testing"
)

// A Prometheus whose port was taken meanwhile is noticed (start returns
// false, for StartWith to try another port), and the process on the port
// is not taken for it.
func TestPortTaken(t *testing.T) {
	first := Start(t)
	dir := t.TempDir()
	s := &Server{t: t, dir: dir, scheme: "http", addr: first.addr, logPath: filepath.Join(dir, "prometheus.log"), client: first.client}
	for _, a := range first.args {
		if strings.HasPrefix(a, "--storage.tsdb.path=") {
			a = "--storage.tsdb.path=" + filepath.Join(dir, "data")
		}
		s.args = append(s.args, a)
	}
	t.Cleanup(s.stop)
	if s.start(true) {
		t.Fatalf("a second Prometheus on %s was taken as started; its log:\n%s", s.addr, s.logTail(2000))
	}
	if !strings.Contains(s.logTail(-1), "address already in use") {
		t.Errorf("its log does not say why:\n%s", s.logTail(2000))
	}
}
