package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/testutil/influxd"
)

// apiEvent is one event of /api/v1/events, as docs/events.md documents it.
type apiEvent struct {
	UID            string    `json:"uid"`
	Namespace      string    `json:"namespace"`
	FirstTime      time.Time `json:"firstTime"`
	LastTime       time.Time `json:"lastTime"`
	Count          int       `json:"count"`
	Type           string    `json:"type"`
	Reason         string    `json:"reason"`
	Message        string    `json:"message"`
	InvolvedObject struct {
		Kind, Namespace, Name, UID string
	} `json:"involvedObject"`
	Source struct {
		Component, Host string
	} `json:"source"`
	ReportingController string `json:"reportingController"`
	Node                string `json:"node"`
}

// podEvents is what kubemon p answers for the events of pod default/name.
func podEvents(t *testing.T, p *proc, query string) []apiEvent {
	t.Helper()
	var env struct {
		Status string     `json:"status"`
		Data   []apiEvent `json:"data"`
	}
	p.getJSON(t, "/api/v1/events?"+query, &env)
	if env.Status != "success" {
		t.Fatalf("/api/v1/events?%s: status %q", query, env.Status)
	}
	return env.Data
}

func reasonsOf(evs []apiEvent) map[string]apiEvent {
	m := map[string]apiEvent{}
	for _, e := range evs {
		if old, ok := m[e.Reason]; !ok || e.LastTime.After(old.LastTime) {
			m[e.Reason] = e
		}
	}
	return m
}

func hasReasons(evs []apiEvent, want ...string) bool {
	m := reasonsOf(evs)
	for _, r := range want {
		if _, ok := m[r]; !ok {
			return false
		}
	}
	return true
}

// TestRealClusterEvents: a real pod's events — the scheduler's Scheduled,
// the kubelet's Pulled, Created, Started, and Killing once the pod is
// deleted — are in /api/v1/events filtered by that pod, both in the
// kubemon installed from deploy/ (its RBAC lists and watches events; the
// API answers only the kubemon-viewer token) and in a kubemon on the host
// with kubemon's ServiceAccount, which sends them to a real InfluxDB in the
// Heapster eventer's schema. A crash-looping pod's BackOff is one event
// whose count rises (updates replace the record).
func TestRealClusterEvents(t *testing.T) {
	c := upCluster(t)
	needSinkBinaries(t, true, false)
	idb := influxd.Start(t, influxd.Debian)
	host := serve(t, "--kubeconfig", filepath.Join(c.dir, "kubemon.kubeconfig"), "--interval", "5s",
		"--sink", "influxdb:"+idb.URL+"?db="+heapsterDB+"&events=only&cluster_name="+e2eCluster)
	waitFor(t, 60*time.Second, "the host kubemon's /healthz", func() bool { code, _ := host.get(t, "/healthz"); return code == 200 })
	pod := c.kubemon(t)

	name := fmt.Sprintf("events-e2e-%d", time.Now().UnixNano()%1_000_000)
	c.apply(t, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: default, labels: {app: events-e2e}}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
  - name: burn
    image: localhost/loadgen:kubemon
    imagePullPolicy: Never
    args: ["-millicores", "10", "-mebibytes", "4"]
`, name))
	t.Cleanup(func() { c.kubectl(t, "delete", "pod", name, "--ignore-not-found", "--wait=false") })
	c.kubectl(t, "wait", "--for=condition=Ready", "pod/"+name, "--timeout=120s")
	uid := strings.TrimSpace(c.kubectl(t, "get", "pod", name, "-o", "jsonpath={.metadata.uid}"))
	byPod := "namespace=default&kind=Pod&name=" + name
	started := []string{"Scheduled", "Pulled", "Created", "Started"}
	for _, km := range []struct {
		what string
		p    *proc
	}{{"the kubemon pod", pod}, {"the host kubemon", host}} {
		waitFor(t, 60*time.Second, km.what+": "+strings.Join(started, ", ")+" of "+name, func() bool {
			return hasReasons(podEvents(t, km.p, byPod), started...)
		})
	}

	c.kubectl(t, "delete", "pod", name, "--wait=true", "--timeout=60s")
	for _, km := range []struct {
		what string
		p    *proc
	}{{"the kubemon pod", pod}, {"the host kubemon", host}} {
		waitFor(t, 60*time.Second, km.what+": Killing of "+name, func() bool { return hasReasons(podEvents(t, km.p, byPod), "Killing") })
		evs := podEvents(t, km.p, byPod)
		m := reasonsOf(evs)
		for _, r := range append(started, "Killing") {
			e := m[r]
			if e.InvolvedObject.Kind != "Pod" || e.InvolvedObject.Name != name || e.InvolvedObject.UID != uid || e.Namespace != "default" ||
				e.Count < 1 || e.Type != "Normal" || e.LastTime.Before(e.FirstTime) || time.Since(e.LastTime) > 10*time.Minute || e.UID == "" {
				t.Errorf("%s: %s event %+v", km.what, r, e)
			}
			if r != "Scheduled" && (e.Node != "kmnode1" || e.Source.Component != "kubelet") {
				t.Errorf("%s: %s from %+v on node %q, want the kubelet of kmnode1", km.what, r, e.Source, e.Node)
			}
		}
		if s := m["Scheduled"]; !strings.Contains(s.Message, "kmnode1") || (s.Source.Component != "default-scheduler" && s.ReportingController != "default-scheduler") {
			t.Errorf("%s: Scheduled %+v", km.what, s)
		}
		// Newest first, and the same events by the pod's UID.
		for i := 1; i < len(evs); i++ {
			if evs[i].LastTime.After(evs[i-1].LastTime) {
				t.Errorf("%s: not newest first: %v after %v", km.what, evs[i].LastTime, evs[i-1].LastTime)
			}
		}
		if byUID := podEvents(t, km.p, "uid="+uid); len(byUID) != len(evs) {
			t.Errorf("%s: %d events by uid, %d by name", km.what, len(byUID), len(evs))
		}
		if w := podEvents(t, km.p, byPod+"&type=Warning"); len(w) != 0 {
			t.Errorf("%s: warnings %+v", km.what, w)
		}
		if k := podEvents(t, km.p, byPod+"&reason=Killing&limit=1"); len(k) != 1 || k[0].Reason != "Killing" {
			t.Errorf("%s: reason=Killing: %+v", km.what, k)
		}
	}

	t.Run("authorized like the query API", func(t *testing.T) {
		anon := &proc{base: pod.base}
		if code, _ := anon.get(t, "/api/v1/events?"+byPod); code != http.StatusUnauthorized {
			t.Errorf("without a token: %d, want 401", code)
		}
		other := &proc{base: pod.base, token: strings.TrimSpace(c.kubectl(t, "-n", "default", "create", "token", "default"))}
		if code, _ := other.get(t, "/api/v1/events?"+byPod); code != http.StatusForbidden {
			t.Errorf("a ServiceAccount without kubemon-viewer: %d, want 403", code)
		}
		if code, b := pod.get(t, "/api/v1/events?limit=0"); code != http.StatusBadRequest || !strings.Contains(string(b), `invalid parameter \"limit\"`) {
			t.Errorf("limit=0: %d %s", code, b)
		}
	})

	t.Run("InfluxDB in the eventer's schema", func(t *testing.T) {
		q := fmt.Sprintf(`SELECT "value" FROM "log/events" WHERE "pod_name" = '%s' GROUP BY *`, name)
		var reasons map[string]map[string]string // reason → tags
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("host kubemon's log:\n%s", host.Logs())
			}
		})
		waitFor(t, 60*time.Second, "the pod's events in InfluxDB", func() bool {
			reasons = map[string]map[string]string{}
			// The sink creates the database with its first write.
			if dbs := idb.Query(t, "", "SHOW DATABASES"); len(dbs) == 0 || !slices.ContainsFunc(dbs[0].Values, func(row []any) bool { return row[0] == heapsterDB }) {
				return false
			}
			for _, s := range idb.Query(t, heapsterDB, q) {
				col := s.Column("value")
				for _, row := range s.Values {
					var ev struct {
						Kind, Reason   string
						Metadata       struct{ UID string }
						InvolvedObject struct{ Name, UID string }
					}
					raw, _ := row[col].(string)
					if err := json.Unmarshal([]byte(raw), &ev); err != nil {
						t.Fatalf("value %q: %v", raw, err)
					}
					if ev.Kind != "Event" || ev.InvolvedObject.Name != name || ev.Metadata.UID != s.Tags["uid"] {
						t.Fatalf("value %s under tags %v", raw, s.Tags)
					}
					reasons[ev.Reason] = s.Tags
				}
			}
			return len(reasons) >= 5
		})
		for _, r := range append(started, "Killing") {
			tags, ok := reasons[r]
			if !ok {
				t.Errorf("no %s point (got %v)", r, reasons)
				continue
			}
			if tags["pod_id"] != uid || tags["pod_name"] != name || tags["cluster_name"] != e2eCluster || tags["uid"] == "" ||
				tags["namespace_name"] != "default" || tags["kind"] != "Pod" || tags["reason"] != r {
				t.Errorf("%s point tags %v", r, tags)
			}
			if r != "Scheduled" && tags["hostname"] != "kmnode1" {
				t.Errorf("%s point hostname %q", r, tags["hostname"])
			}
		}
	})

	t.Run("a crash loop's BackOff is one event whose count rises", func(t *testing.T) {
		crash := name + "-crash"
		c.apply(t, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: default}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
  - name: crash
    image: localhost/loadgen:kubemon
    imagePullPolicy: Never
    args: ["-no-such-flag"]
`, crash))
		t.Cleanup(func() { c.kubectl(t, "delete", "pod", crash, "--ignore-not-found", "--wait=false") })
		q := "namespace=default&kind=Pod&name=" + crash + "&reason=BackOff"
		var back []apiEvent
		waitFor(t, 3*time.Minute, "a BackOff of count 2 or more", func() bool {
			back = podEvents(t, host, q)
			return len(back) > 0 && back[0].Count >= 2
		})
		if len(back) != 1 || back[0].Type != "Warning" || back[0].Node != "kmnode1" {
			t.Errorf("BackOff events %+v, want one record (updated in place)", back)
		}
		if in := podEvents(t, pod, q); len(in) != 1 {
			t.Errorf("the kubemon pod: %d BackOff records, want 1", len(in))
		}
	})
}
