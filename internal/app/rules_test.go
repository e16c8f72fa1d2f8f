package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/kubemon/kubemon/internal/api/promapi"
	"github.com/kubemon/kubemon/internal/config"
	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/store"
)

// TestRulesAPIAuthorized: /api/v1/rules and /api/v1/alerts are behind the
// HTTP API's gate exactly as /api/v1/query: no token is 401, a user the
// Kubernetes API does not authorize is 403, one it authorizes (verb get on
// kubemon.io's resource api) gets the answer; each is authorized as its
// own subresource.
func TestRulesAPIAuthorized(t *testing.T) {
	var mu sync.Mutex
	var asked []string // user/verb/group/resource/subresource of every SubjectAccessReview
	// The Kubernetes API's TokenReview and SubjectAccessReview: tokens
	// alice and bob are those users; alice may get kubemon.io's api.
	kube := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(body, nil, nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var out any
		switch o := obj.(type) {
		case *authenticationv1.TokenReview:
			o.Status = authenticationv1.TokenReviewStatus{Error: "invalid bearer token"}
			if o.Spec.Token == "alice" || o.Spec.Token == "bob" {
				o.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: o.Spec.Token, UID: o.Spec.Token}}
			}
			o.TypeMeta = metav1.TypeMeta{APIVersion: "authentication.k8s.io/v1", Kind: "TokenReview"}
			out = o
		case *authorizationv1.SubjectAccessReview:
			o.Status = authorizationv1.SubjectAccessReviewStatus{Reason: "no RBAC policy matched"}
			if ra := o.Spec.ResourceAttributes; ra != nil {
				mu.Lock()
				asked = append(asked, o.Spec.User+"/"+ra.Verb+"/"+ra.Group+"/"+ra.Resource+"/"+ra.Subresource)
				mu.Unlock()
				if o.Spec.User == "alice" && ra.Group == "kubemon.io" && ra.Resource == "api" && ra.Verb == "get" {
					o.Status = authorizationv1.SubjectAccessReviewStatus{Allowed: true, Reason: "kubemon-viewer"}
				}
			}
			o.TypeMeta = metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "SubjectAccessReview"}
			out = o
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(out)
	}))
	defer kube.Close()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: kube.URL, QPS: 1000, Burst: 1000})
	if err != nil {
		t.Fatal(err)
	}

	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	prom, err := promapi.New(promapi.Options{Queryable: st.Queryable()})
	if err != nil {
		t.Fatal(err)
	}
	defer prom.Close()
	mux := http.NewServeMux()
	prom.Register(mux)
	prom.RegisterRules(mux, nil)
	h, err := protect(cs, mux, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	paths := []string{"/api/v1/query?query=1", "/api/v1/rules", "/api/v1/alerts"}
	for _, p := range paths {
		for _, tc := range []struct {
			token string
			code  int
		}{{"", 401}, {"nobody", 401}, {"bob", 403}, {"alice", 200}} {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+p, nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Errorf("GET %s as %q: %d, want %d", p, tc.token, resp.StatusCode, tc.code)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"alice/get/kubemon.io/api/query", "alice/get/kubemon.io/api/rules", "alice/get/kubemon.io/api/alerts", "bob/get/kubemon.io/api/rules"} {
		if !slices.Contains(asked, want) {
			t.Errorf("no SubjectAccessReview %s among %v", want, asked)
		}
	}
}

// TestRunRefusesBadRules: kubemon does not start with a bad rule file, and
// says which file and line.
func TestRunRefusesBadRules(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(bad, []byte("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: sum(\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Rules.Files = []string{bad}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = Run(ctx, cfg, Options{Listener: ln, Targets: func() []model.Target { return nil }, Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), bad+`:5:15: group "g", rule 1, "A": could not parse expression`) {
		t.Fatalf("Run: %v, want the bad file's line", err)
	}
}
