package podmeta

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/sim"
)

// decodeListRef is DecodeList as first written: the whole v1.PodList with
// encoding/json. The tests hold DecodeList to it.
func decodeListRef(data []byte) ([]model.PodMeta, error) {
	var list corev1.PodList
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("decode pods: %w", err)
	}
	out := make([]model.PodMeta, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, FromPod(&list.Items[i]))
	}
	return out, nil
}

// same reports how a and b differ, "" when they do not (NaN equals NaN:
// fmt prints both alike, and maps in key order).
func same(a, b []model.PodMeta) string {
	if len(a) != len(b) {
		return fmt.Sprintf("%d pods vs %d", len(a), len(b))
	}
	for i := range a {
		if x, y := fmt.Sprintf("%+v", a[i]), fmt.Sprintf("%+v", b[i]); x != y {
			return fmt.Sprintf("pod %d:\n%s\nvs\n%s", i, x, y)
		}
	}
	return ""
}

// simPods is the simulated cluster's /api/v1/pods at t: realistic pods,
// requests and limits, owners, restarts, waiting and terminated states.
func simPods(t testing.TB, at time.Time) []byte {
	c, err := sim.New(sim.Options{Nodes: 4, PodsPerNode: 30, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	c.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/pods", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/api/v1/pods: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.Bytes()
}

// TestDecodeListMatchesJSON: the one-pass decoder gives what the whole
// Pod through encoding/json gives, on the simulator's pods at several
// times (pods churned, containers restarted and OOM-killed between them)
// and on hand-made edge cases.
func TestDecodeListMatchesJSON(t *testing.T) {
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	payloads := map[string][]byte{}
	for _, h := range []int{0, 3, 7, 11} {
		payloads[fmt.Sprintf("sim +%dh", h)] = simPods(t, base.Add(time.Duration(h)*time.Hour))
	}
	for name, doc := range map[string]string{
		"null":           `null`,
		"no items":       `{"kind":"PodList","items":null}`,
		"a null pod":     `{"items":[null,{"metadata":{"name":"p"}}]}`,
		"null fields":    `{"items":[{"metadata":{"name":null,"labels":null,"ownerReferences":null},"spec":null,"status":{"containerStatuses":null}}]}`,
		"quantities":     `{"items":[{"spec":{"containers":[{"name":"c","resources":{"requests":{"cpu":0.5,"memory":"1Gi","nvidia.com/gpu":"1"},"limits":{"cpu":" 2 ","memory":null}}}]}}]}`,
		"owners":         `{"items":[{"metadata":{"ownerReferences":[{"kind":"Job","name":"a-1","controller":false},{"kind":"ReplicaSet","name":"b-x","controller":true}],"labels":{"pod-template-hash":"x"}}}]}`,
		"escapes":        `{"items":[{"metadata":{"name":"p\u00e9\"q","namespace":"n\\s","labels":{"k\/1":"v\n"}}}]}`,
		"times":          `{"items":[{"spec":{"containers":[{"name":"c"}]},"status":{"containerStatuses":[{"name":"c","restartCount":2,"state":{"terminated":{"exitCode":1}},"lastState":{"terminated":{"reason":"Error","exitCode":-1,"startedAt":"2026-01-02T03:04:05+02:00","finishedAt":null}}}]}}]}`,
		"unknown fields": `{"apiVersion":"v1","metadata":{"resourceVersion":"7"},"items":[{"kind":"Pod","spec":{"volumes":[{"name":"v","emptyDir":{}}],"containers":[{"name":"c","image":"x","ports":[{"containerPort":80}]}]}}]}`,
	} {
		payloads[name] = []byte(doc)
	}
	pods := 0
	for name, data := range payloads {
		want, werr := decodeListRef(data)
		got, gerr := DecodeList(data)
		if werr != nil || gerr != nil {
			t.Errorf("%s: reference err %v, one-pass err %v", name, werr, gerr)
			continue
		}
		if d := same(got, want); d != "" {
			t.Errorf("%s: %s", name, d)
		}
		pods += len(got)
	}
	if pods < 4*4*30 {
		t.Fatalf("only %d pods compared", pods)
	}
}

func TestDecodeListErrors(t *testing.T) {
	for name, doc := range map[string]string{
		"truncated":           `{"items":[{"metadata":{"name":"p"}`,
		"not a list":          `[1,2]`,
		"items an object":     `{"items":{}}`,
		"a pod a string":      `{"items":["p"]}`,
		"bad quantity":        `{"items":[{"spec":{"containers":[{"resources":{"requests":{"cpu":"lots"}}}]}}]}`,
		"restarts a fraction": `{"items":[{"status":{"containerStatuses":[{"restartCount":1.5}]}}]}`,
		"restarts too many":   `{"items":[{"status":{"containerStatuses":[{"restartCount":4294967296}]}}]}`,
		"bad time":            `{"items":[{"status":{"containerStatuses":[{"lastState":{"terminated":{"startedAt":"yesterday"}}}]}}]}`,
		"empty time":          `{"items":[{"status":{"containerStatuses":[{"lastState":{"terminated":{"startedAt":""}}}]}}]}`,
		"no value":            `{"items":[{"status":{"containerStatuses":[{"lastState":{"terminated":{"startedAt":}}}]}}]}`,
		"controller a string": `{"items":[{"metadata":{"ownerReferences":[{"controller":"yes"}]}}]}`,
		"trailing data":       `{"items":[]} x`,
	} {
		if _, err := decodeListRef([]byte(doc)); err == nil {
			t.Errorf("%s: the reference takes it: the case tests nothing", name)
		}
		if pods, err := DecodeList([]byte(doc)); err == nil {
			t.Errorf("%s: decoded %+v, want an error", name, pods)
		}
	}
}

// FuzzDecodeList: never a panic; what is not JSON is refused; on every
// list encoding/json takes, the same pods, compared on its own
// re-encoding (which drops what the types ignore, such as keys in another
// letter case, and writes quantities in their canonical form).
func FuzzDecodeList(f *testing.F) {
	f.Add(simPods(f, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))[:4096])
	f.Add([]byte(`{"items":[{"metadata":{"name":"p","ownerReferences":[{"kind":"ReplicaSet","name":"a-b","controller":true}],"labels":{"pod-template-hash":"b"}},"spec":{"restartPolicy":"OnFailure","containers":[{"name":"c","resources":{"limits":{"cpu":"100m","memory":"1Mi"}}}]},"status":{"phase":"Running","containerStatuses":[{"name":"c","restartCount":1,"state":{"terminated":{"exitCode":2}},"lastState":{"terminated":{"reason":"OOMKilled","exitCode":137,"startedAt":"2026-01-01T00:00:00Z"}}}]}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		pods, err := DecodeList(data)
		if err == nil && !json.Valid(data) {
			t.Fatalf("not JSON, yet decoded: %q", data)
		}
		for _, p := range pods {
			for _, c := range p.Containers {
				for _, v := range []float64{c.CPURequest, c.CPULimit, c.MemoryRequest, c.MemoryLimit} {
					if math.IsInf(v, 0) {
						t.Fatalf("%+v", c)
					}
				}
			}
		}
		var list corev1.PodList
		if json.Unmarshal(data, &list) != nil {
			return
		}
		canon, err := json.Marshal(&list)
		if err != nil {
			return
		}
		want, werr := decodeListRef(canon)
		got, gerr := DecodeList(canon)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("reference err %v, one-pass err %v on %s", werr, gerr, canon)
		}
		if werr == nil {
			if d := same(got, want); d != "" {
				t.Fatalf("%s on %s", d, canon)
			}
		}
	})
}

func BenchmarkDecodeList(b *testing.B) {
	data := simPods(b, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	for _, d := range []struct {
		name string
		f    func([]byte) ([]model.PodMeta, error)
	}{{"jsonscan", DecodeList}, {"encoding-json", decodeListRef}} {
		b.Run(d.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.f(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
