package app

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubemon/kubemon/internal/config"
	"github.com/kubemon/kubemon/internal/events"
	"github.com/kubemon/kubemon/internal/model"
)

// Run wires the events: a feed's events are stored, served at
// /api/v1/events and sent to an events=only InfluxDB sink (and nothing
// else is sent to it).
func TestRunEvents(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	influx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/query" {
			_, _ = io.WriteString(w, `{"results":[{"statement_id":0}]}`)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, _ := io.ReadAll(body)
		mu.Lock()
		lines = append(lines, strings.Split(strings.TrimSpace(string(b)), "\n")...)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer influx.Close()

	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Interval = time.Second
	sk, err := config.ParseSink("influxdb:" + influx.URL + "?db=k8s&events=only&name=eventer")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Sinks = []config.Sink{sk}
	fed := make(chan struct{})
	feed := func(ctx context.Context, st events.Putter) error {
		<-fed // after the sink exists, as a watch would
		_, err := st.Put(ctx, []*corev1.Event{{
			ObjectMeta:     metav1.ObjectMeta{Name: "web.1", Namespace: "shop", UID: "e-1"},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: "web", UID: "p-1"},
			Reason:         "Started", Type: "Normal", Message: "Started container web", Count: 1,
			LastTimestamp: metav1.NewTime(time.Now()), Source: corev1.EventSource{Component: "kubelet", Host: "n1"},
		}})
		if err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, Options{Listener: ln, Targets: func() []model.Target { return nil }, EventFeed: feed,
			Logger: slog.New(slog.DiscardHandler), Ready: func(string) { close(fed) }})
	}()
	base := "http://" + ln.Addr().String()
	deadline := time.Now().Add(20 * time.Second)
	var got struct {
		Status string `json:"status"`
		Data   []struct {
			UID, Reason, Node string
		} `json:"data"`
	}
	for {
		resp, err := http.Get(base + "/api/v1/events?kind=Pod&name=web&namespace=shop")
		if err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&got)
			resp.Body.Close()
		}
		mu.Lock()
		n := len(lines)
		mu.Unlock()
		if len(got.Data) == 1 && n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events API %+v, %d lines sent", got, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got.Data[0].UID != "e-1" || got.Data[0].Reason != "Started" || got.Data[0].Node != "n1" {
		t.Errorf("API: %+v", got.Data)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lines) != 1 || !strings.HasPrefix(lines[0], `log/events,component=kubelet,hostname=n1,kind=Pod,namespace_name=shop,object_name=web,pod_id=p-1,pod_name=web,reason=Started,type=Normal,uid=e-1 value="{`) {
		t.Errorf("an events=only sink got %q", lines)
	}
	for _, f := range []string{"events/events.db", "sinks/eventer.events.position.json"} {
		if _, err := os.Stat(filepath.Join(cfg.DataDir, f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "sinks/eventer.position.json")); err == nil {
		t.Error("an events=only sink exported metrics")
	}
}
