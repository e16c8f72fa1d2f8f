package promserver_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/kubemon/kubemon/internal/sink"
	"github.com/kubemon/kubemon/internal/sink/remotewrite"
	"github.com/kubemon/kubemon/internal/testutil/promserver"
)

func alive(pid int) bool {
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func TestServer(t *testing.T) {
	var pids []int
	t.Run("lifecycle", func(t *testing.T) {
		s := promserver.Start(t)
		pids = append(pids, s.PID())
		if !strings.HasPrefix(s.WriteURL(), "http://127.0.0.1:") || !strings.HasSuffix(s.WriteURL(), "/api/v1/write") {
			t.Errorf("write URL %s", s.WriteURL())
		}
		w, err := remotewrite.New(remotewrite.Options{URL: s.WriteURL()})
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
		batch := []sink.Series{{Labels: labels.FromStrings("__name__", "up_test", "job", "a")}}
		for i := range 5 {
			batch[0].Samples = append(batch[0].Samples, sink.Sample{T: t0.Add(time.Duration(i) * 15 * time.Second).UnixMilli(), V: float64(i) + 0.5})
		}
		if err := w.Write(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		check := func(when string) {
			t.Helper()
			m := s.QueryRange(t, "up_test", t0, t0.Add(time.Minute), 15*time.Second)
			if len(m) != 1 || len(m[0].Values) != 5 || m[0].Metric["job"] != "a" {
				t.Fatalf("%s: range query answered %v, want 5 points of up_test{job=\"a\"}", when, m)
			}
			for i, p := range m[0].Values {
				if !(float64(p.Value) == float64(i)+0.5) || !p.Timestamp.Time().Equal(t0.Add(time.Duration(i)*15*time.Second)) {
					t.Errorf("%s: point %d is %v, want %v at %v", when, i, p, float64(i)+0.5, t0.Add(time.Duration(i)*15*time.Second))
				}
			}
			v, ok := s.Query(t, "up_test", t0.Add(time.Minute)).(model.Vector)
			if !ok || len(v) != 1 || !(float64(v[0].Value) == 4.5) {
				t.Errorf("%s: instant query answered %v, want 4.5", when, v)
			}
		}
		check("started")
		if sc, ok := s.Query(t, "1+1", time.Now()).(*model.Scalar); !ok || !(float64(sc.Value) == 2) {
			t.Errorf("1+1 answered %v", sc)
		}

		pid := s.PID()
		s.Kill()
		if alive(pid) {
			t.Fatalf("pid %d alive after Kill", pid)
		}
		if resp, err := http.Get(s.URL() + "/-/ready"); err == nil {
			resp.Body.Close()
			t.Fatalf("a killed Prometheus answered %s", resp.Status)
		}
		s.Restart()
		pids = append(pids, s.PID())
		if s.PID() == pid || !alive(s.PID()) {
			t.Fatalf("restart: pid %d (was %d)", s.PID(), pid)
		}
		check("restarted after SIGKILL") // the WAL kept the samples
	})
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("pid %d still runs after the test's cleanup", pid)
		}
	}
}
