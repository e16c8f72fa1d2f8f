package sim

import (
	"net/http"
	"regexp"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// rfc3339Second matches the second-precision times of a Summary payload.
var rfc3339Second = regexp.MustCompile(`"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"`)

// shiftTimes returns a Summary payload with every time moved by d, and how
// many there were.
func shiftTimes(t *testing.T, b []byte, d time.Duration) ([]byte, int) {
	t.Helper()
	n := 0
	out := rfc3339Second.ReplaceAllFunc(b, func(m []byte) []byte {
		tm, err := time.Parse(`"`+time.RFC3339+`"`, string(m))
		if err != nil {
			t.Fatal(err)
		}
		n++
		return []byte(tm.Add(d).UTC().Format(`"` + time.RFC3339 + `"`))
	})
	return out, n
}

// TestClockAheadFault: with fault=clock-ahead a node's kubelet reports every
// time (samples and start times, on all three stats endpoints) exactly
// ClockAheadOffset ahead and every value as before; other nodes are
// unaffected and fault=none restores the true clock.
func TestClockAheadFault(t *testing.T) {
	if f, err := ParseFault("clock-ahead"); err != nil || f != FaultClockAhead || f.String() != "clock-ahead" {
		t.Fatalf("ParseFault(clock-ahead) = %v, %v", f, err)
	}
	for _, mode := range []Mode{ModeConstant, ModeRealistic} {
		t.Run(string(mode), func(t *testing.T) {
			c, _ := startCluster(t, Options{Nodes: 2, PodsPerNode: 4, Mode: mode})
			nodes := c.Nodes()
			target, other := nodes[0], nodes[1]
			paths := []string{"/stats/summary", "/metrics/resource", "/metrics/cadvisor"}
			normal, otherNormal := map[string][]byte{}, map[string][]byte{}
			for _, p := range paths {
				normal[p] = mustGet(t, nodeURL(target, p))
				otherNormal[p] = mustGet(t, nodeURL(other, p))
			}

			if rec := handlerGet(t, c.Handler(), http.MethodPost, "/sim/fault?node="+target.Name+"&fault=clock-ahead"); rec.Code != http.StatusNoContent {
				t.Fatalf("POST /sim/fault clock-ahead: %d %s", rec.Code, rec.Body)
			}

			// Summary: the same payload with every time 2 h later.
			skewed := mustGet(t, nodeURL(target, "/stats/summary"))
			want, n := shiftTimes(t, normal["/stats/summary"], ClockAheadOffset)
			if n < 10 {
				t.Fatalf("only %d times in the summary", n)
			}
			if string(skewed) != string(want) {
				t.Errorf("clock-ahead summary is not the normal one with times +2h:\n got %.400s\nwant %.400s", skewed, want)
			}
			getSummary(t, target) // still a strictly valid Summary

			// Expositions: every timestamp 2 h later, start and last-seen
			// times 7200 s later, every other value the same.
			const offMs = int64(ClockAheadOffset / time.Millisecond)
			for _, p := range paths[1:] {
				before := parseProm(t, normal[p])
				after := parseProm(t, mustGet(t, nodeURL(target, p)))
				if len(after) != len(before) {
					t.Fatalf("%s: %d families, want %d", p, len(after), len(before))
				}
				stamped, starts := 0, 0
				for name, bf := range before {
					af := after[name]
					if af == nil || len(af.Metric) != len(bf.Metric) {
						t.Fatalf("%s %s: series differ", p, name)
					}
					for i, bm := range bf.Metric {
						am := af.Metric[i]
						if bm.TimestampMs != nil {
							stamped++
							if am.TimestampMs == nil || *am.TimestampMs != *bm.TimestampMs+offMs {
								t.Errorf("%s %s: timestamp %v, want %d", p, name, am.TimestampMs, *bm.TimestampMs+offMs)
							}
						} else if am.TimestampMs != nil {
							t.Errorf("%s %s: timestamp %d, want none", p, name, *am.TimestampMs)
						}
						bv, av := promValue(bm), promValue(am)
						if name == "container_start_time_seconds" || name == "container_last_seen" {
							starts++
							bv += ClockAheadOffset.Seconds()
						}
						if av != bv {
							t.Errorf("%s %s %v: value %v, want %v", p, name, am.Label, av, bv)
						}
					}
				}
				if stamped == 0 || starts == 0 {
					t.Errorf("%s: %d timestamps, %d start times checked", p, stamped, starts)
				}
			}

			// The other node keeps the true clock.
			for _, p := range paths {
				if got := mustGet(t, nodeURL(other, p)); string(got) != string(otherNormal[p]) {
					t.Errorf("%s of the other node changed under clock-ahead", p)
				}
			}

			// fault=none clears it.
			if rec := handlerGet(t, c.Handler(), http.MethodPost, "/sim/fault?node="+target.Name+"&fault=none"); rec.Code != http.StatusNoContent {
				t.Fatalf("POST /sim/fault none: %d", rec.Code)
			}
			for _, p := range paths {
				if got := mustGet(t, nodeURL(target, p)); string(got) != string(normal[p]) {
					t.Errorf("%s after fault=none differs from before the fault", p)
				}
			}
		})
	}
}

func promValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return m.Untyped.GetValue()
}
