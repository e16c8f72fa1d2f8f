package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLocalAccess: demo and a local serve answer without credentials on
// loopback; /debug/pprof is there only when asked for; a serve that would
// answer beyond loopback with no Kubernetes API to check callers refuses
// to start and says how to proceed.
func TestLocalAccess(t *testing.T) {
	plain := startDemo(t, "--nodes", "1", "--pods-per-node", "1", "--data-dir", t.TempDir())
	if code, _ := plain.get(t, "/api/v1/model/nodes/"); code != 200 {
		t.Errorf("demo model API without credentials: %d, want 200", code)
	}
	if code, _ := plain.get(t, "/debug/pprof/"); code != 404 {
		t.Errorf("demo /debug/pprof/ without --enable-pprof: %d, want 404", code)
	}
	if code, _ := plain.get(t, "/livez"); code != 200 {
		t.Errorf("/livez: %d, want 200", code)
	}
	debug := startDemo(t, "--nodes", "1", "--pods-per-node", "1", "--data-dir", t.TempDir(), "--enable-pprof")
	if code, _ := debug.get(t, "/debug/pprof/"); code != 200 {
		t.Errorf("demo /debug/pprof/ with --enable-pprof: %d, want 200", code)
	}

	nodes := filepath.Join(t.TempDir(), "nodes.json")
	if err := os.WriteFile(nodes, []byte(`{"kind":"NodeList","apiVersion":"v1","items":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "serve", "--listen", ":0", "--data-dir", t.TempDir(), "--nodes-file", nodes)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("serve on all interfaces without a Kubernetes API kept running:\n%s", out)
	}
	if err == nil || !strings.Contains(string(out), "--auth=none") {
		t.Errorf("serve on all interfaces without a Kubernetes API: %v\n%s\nwant a refusal naming --auth=none", err, out)
	}
}
