package kubeauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/request"
)

// syncBuffer is a bytes.Buffer safe for a logger written from handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// records are the JSON log records written so far.
func (s *syncBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(s.b.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// seen is what the wrapped handler received.
type seen struct {
	called        bool
	user          user.Info
	authorization string
}

// recorder is the wrapped handler: it records the user in the context and
// the Authorization header it got, and answers 200 "ok".
type recorder struct {
	mu  sync.Mutex
	got seen
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.got.called = true
	rec.got.user, _ = request.UserFrom(r.Context())
	rec.got.authorization = r.Header.Get("Authorization")
	_, _ = io.WriteString(w, "ok")
}

// take returns what the handler saw since the last take.
func (rec *recorder) take() seen {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	got := rec.got
	rec.got = seen{}
	return got
}

// fakeAuthn accepts "Bearer good" as alice, refuses "Bearer bad" and fails
// (as a TokenReview that could not be made) on "Bearer broken".
var fakeAuthn = authenticator.RequestFunc(func(r *http.Request) (*authenticator.Response, bool, error) {
	switch r.Header.Get("Authorization") {
	case "":
		return nil, false, nil
	case "Bearer good":
		return &authenticator.Response{User: &user.DefaultInfo{Name: "alice", Groups: []string{"team-a", user.AllAuthenticated}}}, true, nil
	case "Bearer broken":
		return nil, false, errors.New("tokenreviews: connection refused")
	default:
		return nil, false, errors.New("invalid bearer token")
	}
})

// fakeAuthz lets alice get and post /api/v1/query, errs on /error and
// denies the rest; it records the attributes it is asked about.
type fakeAuthz struct {
	mu    sync.Mutex
	attrs []authorizer.Attributes
}

func (a *fakeAuthz) Authorize(_ context.Context, attr authorizer.Attributes) (authorizer.Decision, string, error) {
	a.mu.Lock()
	a.attrs = append(a.attrs, attr)
	a.mu.Unlock()
	switch {
	case attr.GetPath() == "/error":
		return authorizer.DecisionNoOpinion, "", errors.New("subjectaccessreviews: 500")
	case attr.GetUser().GetName() == "alice" && attr.GetPath() == "/api/v1/query" && (attr.GetVerb() == "get" || attr.GetVerb() == "post"):
		return authorizer.DecisionAllow, "", nil
	default:
		return authorizer.DecisionNoOpinion, "no RBAC policy matched", nil
	}
}

func (a *fakeAuthz) ConditionsAwareAuthorize(ctx context.Context, attr authorizer.Attributes) authorizer.ConditionsAwareDecision {
	return authorizer.ConditionsAwareDecisionFromParts(a.Authorize(ctx, attr))
}

func (a *fakeAuthz) EvaluateConditions(context.Context, authorizer.ConditionsAwareDecision, authorizer.ConditionsData) (authorizer.Decision, string, error) {
	return authorizer.DecisionDeny, "", authorizer.ErrorConditionEvaluationNotSupported
}

// asked returns the attributes asked about so far.
func (a *fakeAuthz) asked() []authorizer.Attributes {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.attrs)
}

// authCase is one request through the filter and what must come of it;
// the table is shared by the fake and the end-to-end tests.
type authCase struct {
	name, method, path, token string
	code                      int
	body                      string // a substring of the response body
	verb                      string // the verb authorized, "" when not authorized
}

var publicPaths = []string{"/healthz", "/readyz", "/livez"}

func TestFilter(t *testing.T) {
	logs := &syncBuffer{}
	reg := prometheus.NewPedanticRegistry()
	authz := &fakeAuthz{}
	f, err := newFilter(fakeAuthn, authz, Options{
		Public:         publicPaths,
		PublicPrefixes: []string{"/ui/"},
		Logger:         slog.New(slog.NewJSONHandler(logs, nil)),
		Registerer:     reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	h := f.Handler(rec)

	cases := []authCase{
		{name: "public without token", method: "GET", path: "/healthz", code: 200, body: "ok"},
		{name: "public with a bad token", method: "GET", path: "/readyz", token: "bad", code: 200, body: "ok"},
		{name: "public is exact", method: "GET", path: "/healthz/", code: 401},
		{name: "no token", method: "GET", path: "/api/v1/query", code: 401, body: "Unauthorized"},
		{name: "bad token", method: "GET", path: "/api/v1/query", token: "bad", code: 401},
		{name: "token review failed", method: "GET", path: "/api/v1/query", token: "broken", code: 401},
		{name: "allowed get", method: "GET", path: "/api/v1/query", token: "good", code: 200, body: "ok", verb: "get"},
		{name: "head is get", method: "HEAD", path: "/api/v1/query", token: "good", code: 200, verb: "get"},
		{name: "post is post", method: "POST", path: "/api/v1/query", token: "good", code: 200, body: "ok", verb: "post"},
		{name: "put denied", method: "PUT", path: "/api/v1/query", token: "good", code: 403,
			body: `forbidden: User "alice" cannot put path "/api/v1/query": no RBAC policy matched`, verb: "put"},
		{name: "path denied", method: "GET", path: "/metrics", token: "good", code: 403,
			body: `forbidden: User "alice" cannot get path "/metrics": no RBAC policy matched`, verb: "get"},
		{name: "authorizer error", method: "GET", path: "/error", token: "good", code: 403,
			body: `forbidden: User "alice" cannot get path "/error": the authorization check failed`, verb: "get"},
		{name: "public prefix", method: "GET", path: "/ui/app.js", code: 200, body: "ok"},
		{name: "public prefix, cleaned paths only", method: "GET", path: "/ui/../api/v1/query", code: 401},
		{name: "public prefix needs its slash", method: "GET", path: "/uiapp.js", code: 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(authz.asked())
			req := httptest.NewRequest(c.method, c.path, nil)
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			resp := httptest.NewRecorder()
			h.ServeHTTP(resp, req)
			checkResponse(t, c, resp.Code, resp.Header(), resp.Body.String())
			got := rec.take()
			if got.called != (c.code == 200) {
				t.Errorf("handler called: %v", got.called)
			}
			if req.Header.Get("Authorization") == "" && c.token != "" {
				t.Error("the caller's request lost its Authorization header")
			}

			if c.code == 200 {
				if got.authorization != "" {
					t.Errorf("handler saw Authorization %q", got.authorization)
				}
				if c.verb != "" && (got.user == nil || got.user.GetName() != "alice") {
					t.Errorf("handler saw user %v, want alice", got.user)
				}
				if c.verb == "" && got.user != nil {
					t.Errorf("public handler saw user %v", got.user)
				}
			}
			asked := authz.asked()[before:]
			switch {
			case c.verb == "" && len(asked) != 0:
				t.Errorf("authorizer asked about %+v", asked)
			case c.verb != "":
				if len(asked) != 1 {
					t.Fatalf("authorizer asked %d times, want once", len(asked))
				}
				attr := asked[0]
				want := authorizer.AttributesRecord{User: attr.GetUser(), Verb: c.verb, Path: c.path}
				if !reflect.DeepEqual(attr, want) || attr.GetUser().GetName() != "alice" {
					t.Errorf("authorized %+v, want %+v for alice", attr, want)
				}
			}
		})
	}

	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP kubemon_http_requests_refused_total HTTP API requests refused by Kubernetes-delegated authentication (code 401) or authorization (code 403).
# TYPE kubemon_http_requests_refused_total counter
kubemon_http_requests_refused_total{code="401"} 6
kubemon_http_requests_refused_total{code="403"} 3
`), "kubemon_http_requests_refused_total"); err != nil {
		t.Error(err)
	}

	var unauth, forbidden []map[string]any
	for _, r := range logs.records(t) {
		if r["level"] != "WARN" {
			t.Errorf("log record not at Warn: %v", r)
		}
		switch r["msg"] {
		case "http request not authenticated":
			unauth = append(unauth, r)
		case "http request forbidden":
			forbidden = append(forbidden, r)
		default:
			t.Errorf("unexpected log record %v", r)
		}
	}
	if len(unauth) != 6 || len(forbidden) != 3 {
		t.Fatalf("logged %d unauthenticated and %d forbidden requests, want 6 and 3", len(unauth), len(forbidden))
	}
	if r := unauth[2]; r["status"] != 401.0 || r["method"] != "GET" || r["path"] != "/api/v1/query" ||
		r["err"] != "invalid bearer token" || r["remote"] != "192.0.2.1:1234" {
		t.Errorf("401 logged as %v", r)
	}
	if r := forbidden[1]; r["status"] != 403.0 || r["user"] != "alice" || r["verb"] != "get" || r["path"] != "/metrics" ||
		r["reason"] != "no RBAC policy matched" || len(r["groups"].([]any)) != 2 {
		t.Errorf("403 logged as %v", r)
	}
	if r := forbidden[2]; r["err"] != "subjectaccessreviews: 500" {
		t.Errorf("authorizer error logged as %v", r)
	}
}

// checkResponse checks a response against the case.
func checkResponse(t *testing.T, c authCase, code int, header http.Header, body string) {
	t.Helper()
	if code != c.code {
		t.Fatalf("%s %s: code %d, want %d (body %q)", c.method, c.path, code, c.code, body)
	}
	if c.body != "" && c.method != "HEAD" && !strings.Contains(body, c.body) {
		t.Errorf("body %q, want it to contain %q", body, c.body)
	}
	wantAuth := ""
	if code == 401 {
		wantAuth = `Bearer realm="kubemon"`
	}
	if got := header.Get("WWW-Authenticate"); got != wantAuth {
		t.Errorf("WWW-Authenticate %q, want %q", got, wantAuth)
	}
	if code >= 400 && !strings.HasPrefix(header.Get("Content-Type"), "text/plain") {
		t.Errorf("Content-Type %q, want plain text", header.Get("Content-Type"))
	}
}

func TestNewFilterSharesCounter(t *testing.T) {
	reg := prometheus.NewRegistry()
	authz := &fakeAuthz{}
	f1, err := newFilter(fakeAuthn, authz, Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	f2, err := newFilter(fakeAuthn, authz, Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []*Filter{f1, f2} {
		f.Handler(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/x", nil))
	}
	if n := testutil.ToFloat64(f1.refused.WithLabelValues("401")); n != 2 {
		t.Errorf("shared counter at %v, want 2", n)
	}
}

func TestNewRequiresClient(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without a client: no error")
	}
}

// TestResourcePrefix: with a resource prefix a request is authorized on
// the resource attributes the apiserver derives for prefix + path, so one
// RBAC rule on the group covers the direct and the aggregated path.
func TestResourcePrefix(t *testing.T) {
	authz := &fakeAuthz{}
	f, err := newFilter(fakeAuthn, authz, Options{ResourcePrefix: "/apis/kubemon.io/v1alpha1"})
	if err != nil {
		t.Fatal(err)
	}
	h := f.Handler(&recorder{})
	for _, tt := range []struct {
		method, path string
		want         string // verb group resource/subresource name, or "nonresource verb path"
	}{
		{"GET", "/api/v1/query?query=up", "get kubemon.io api/query v1"},
		{"POST", "/api/v1/query", "create kubemon.io api/query v1"},
		{"HEAD", "/api/v1/query", "get kubemon.io api/query v1"},
		{"GET", "/api/v1/model/namespaces/default/pods/", "get kubemon.io api/model v1"},
		{"GET", "/metrics", "list kubemon.io metrics/ "},
		{"GET", "/", "nonresource get /apis/kubemon.io/v1alpha1/"},
	} {
		before := len(authz.asked())
		req := httptest.NewRequest(tt.method, tt.path, nil)
		req.Header.Set("Authorization", "Bearer good")
		resp := httptest.NewRecorder()
		h.ServeHTTP(resp, req)
		asked := authz.asked()
		if len(asked) != before+1 {
			t.Errorf("%s %s: %d authorization checks, want 1", tt.method, tt.path, len(asked)-before)
			continue
		}
		a := asked[len(asked)-1]
		got := fmt.Sprintf("%s %s %s/%s %s", a.GetVerb(), a.GetAPIGroup(), a.GetResource(), a.GetSubresource(), a.GetName())
		if !a.IsResourceRequest() {
			got = fmt.Sprintf("nonresource %s %s", a.GetVerb(), a.GetPath())
		}
		if got != tt.want {
			t.Errorf("%s %s: authorized as %q, want %q", tt.method, tt.path, got, tt.want)
		}
		if resp.Code != http.StatusForbidden || !strings.Contains(resp.Body.String(), "forbidden: User \"alice\"") {
			t.Errorf("%s %s: %d %q, want 403 (the fake allows no resource)", tt.method, tt.path, resp.Code, resp.Body.String())
		}
	}
	if _, err := newFilter(fakeAuthn, authz, Options{ResourcePrefix: "/kubemon"}); err == nil {
		t.Error("a prefix that is no /apis/<group>/<version>: want an error")
	}
}
