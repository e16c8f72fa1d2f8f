package kubeauth

import (
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
)

// fakeKube plays the Kubernetes API server's TokenReview and
// SubjectAccessReview endpoints: token "good" is alice (group team-a), and
// alice may get /api/v1/query, nothing else.
type fakeKube struct {
	srv *httptest.Server

	mu           sync.Mutex
	tokenReviews map[string]int // by token
	sars         []authorizationv1.SubjectAccessReviewSpec
	failTokens   bool // answer TokenReviews 500
	failSARs     bool // answer SubjectAccessReviews 500
}

func newFakeKube(t *testing.T) *fakeKube {
	k := &fakeKube{tokenReviews: map[string]int{}}
	k.srv = httptest.NewTLSServer(http.HandlerFunc(k.serve))
	t.Cleanup(k.srv.Close)
	return k
}

func (k *fakeKube) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil || r.Method != http.MethodPost {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	// The client's own codecs, whatever content type it chose.
	obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(body, nil, nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	switch r.URL.Path {
	case "/apis/authentication.k8s.io/v1/tokenreviews":
		tr, ok := obj.(*authenticationv1.TokenReview)
		if !ok {
			http.Error(w, "not a TokenReview", http.StatusBadRequest)
			return
		}
		k.tokenReviews[tr.Spec.Token]++
		if k.failTokens {
			internalError(w)
			return
		}
		tr.Status = authenticationv1.TokenReviewStatus{Error: "invalid bearer token"}
		if tr.Spec.Token == "good" {
			tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true,
				User: authenticationv1.UserInfo{Username: "alice", UID: "a-1", Groups: []string{"team-a"}}}
		}
		tr.TypeMeta = metav1.TypeMeta{APIVersion: "authentication.k8s.io/v1", Kind: "TokenReview"}
		writeJSON(w, tr)
	case "/apis/authorization.k8s.io/v1/subjectaccessreviews":
		sar, ok := obj.(*authorizationv1.SubjectAccessReview)
		if !ok {
			http.Error(w, "not a SubjectAccessReview", http.StatusBadRequest)
			return
		}
		k.sars = append(k.sars, sar.Spec)
		if k.failSARs {
			internalError(w)
			return
		}
		nr := sar.Spec.NonResourceAttributes
		if sar.Spec.User == "alice" && sar.Spec.ResourceAttributes == nil && nr != nil && nr.Path == "/api/v1/query" && nr.Verb == "get" {
			sar.Status = authorizationv1.SubjectAccessReviewStatus{Allowed: true, Reason: "test RBAC allows it"}
		} else {
			sar.Status = authorizationv1.SubjectAccessReviewStatus{Reason: "no RBAC policy matched"}
		}
		sar.TypeMeta = metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "SubjectAccessReview"}
		writeJSON(w, sar)
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(v)
}

func internalError(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusInternalServerError)
	_ = json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Status"},
		Status: metav1.StatusFailure, Code: 500, Reason: metav1.StatusReasonInternalError, Message: "etcd is down"})
}

// counts are the TokenReviews per token and the SubjectAccessReviews
// received so far.
func (k *fakeKube) counts() (map[string]int, []authorizationv1.SubjectAccessReviewSpec) {
	k.mu.Lock()
	defer k.mu.Unlock()
	tr := map[string]int{}
	for t, n := range k.tokenReviews {
		tr[t] = n
	}
	return tr, slices.Clone(k.sars)
}

// clientset is a real client-go clientset for the fake API server.
func (k *fakeKube) clientset(t *testing.T) kubernetes.Interface {
	cs, err := kubernetes.NewForConfig(&rest.Config{
		Host: k.srv.URL,
		TLSClientConfig: rest.TLSClientConfig{
			CAData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.srv.Certificate().Raw}),
		},
		QPS: 1000, Burst: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// do sends one request through h (served over HTTP, as in kubemon).
func do(t *testing.T, url string, c authCase) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), c.method, url+c.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

// serveFiltered serves the echo handler behind a real delegating filter
// for kube.
func serveFiltered(t *testing.T, kube *fakeKube, reg prometheus.Registerer, logs io.Writer) (string, *recorder) {
	t.Helper()
	f, err := New(Options{
		Client:     kube.clientset(t),
		Public:     publicPaths,
		Logger:     slog.New(slog.NewJSONHandler(logs, nil)),
		Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	srv := httptest.NewServer(f.Handler(rec))
	t.Cleanup(srv.Close)
	return srv.URL, rec
}

func TestDelegating(t *testing.T) {
	kube := newFakeKube(t)
	reg := prometheus.NewPedanticRegistry()
	logs := &syncBuffer{}
	url, rec := serveFiltered(t, kube, reg, logs)

	cases := []authCase{
		{name: "public without token", method: "GET", path: "/healthz", code: 200, body: "ok"},
		{name: "public livez", method: "GET", path: "/livez", token: "bad", code: 200, body: "ok"},
		{name: "no token", method: "GET", path: "/api/v1/query", code: 401, body: "Unauthorized"},
		{name: "bad token", method: "GET", path: "/api/v1/query", token: "bad", code: 401},
		{name: "bad token again", method: "GET", path: "/api/v1/query", token: "bad", code: 401},
		{name: "allowed get", method: "GET", path: "/api/v1/query", token: "good", code: 200, body: "ok", verb: "get"},
		{name: "allowed get again", method: "GET", path: "/api/v1/query", token: "good", code: 200, body: "ok", verb: "get"},
		{name: "head is get", method: "HEAD", path: "/api/v1/query", token: "good", code: 200, verb: "get"},
		{name: "post is post, denied", method: "POST", path: "/api/v1/query", token: "good", code: 403,
			body: `forbidden: User "alice" cannot post path "/api/v1/query": no RBAC policy matched`, verb: "post"},
		{name: "path denied", method: "GET", path: "/metrics", token: "good", code: 403,
			body: `forbidden: User "alice" cannot get path "/metrics": no RBAC policy matched`, verb: "get"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, header, body := do(t, url, c)
			checkResponse(t, c, code, header, body)
			got := rec.take()
			if got.called != (c.code == 200) {
				t.Errorf("handler called: %v", got.called)
			}
			if code != 200 {
				return
			}
			if got.authorization != "" {
				t.Errorf("handler saw Authorization %q", got.authorization)
			}
			if c.verb == "" {
				if got.user != nil {
					t.Errorf("public handler saw user %+v", got.user)
				}
				return
			}
			if got.user == nil || got.user.GetName() != "alice" || got.user.GetUID() != "a-1" ||
				!slices.Equal(got.user.GetGroups(), []string{"team-a", user.AllAuthenticated}) {
				t.Errorf("handler saw user %+v, want alice (a-1) in team-a and %s", got.user, user.AllAuthenticated)
			}
		})
	}

	tokenReviews, sars := kube.counts()
	// An accepted token is reviewed once (cached); a refused one comes back
	// with status.error, as kube-apiserver's do, and answers with an error
	// are not cached.
	if want := map[string]int{"good": 1, "bad": 2}; !maps.Equal(tokenReviews, want) {
		t.Errorf("TokenReviews by token %v, want %v", tokenReviews, want)
	}
	// GET, GET again and HEAD of /api/v1/query are one review (cached).
	want := []authorizationv1.NonResourceAttributes{{Path: "/api/v1/query", Verb: "get"}, {Path: "/api/v1/query", Verb: "post"}, {Path: "/metrics", Verb: "get"}}
	if len(sars) != len(want) {
		t.Fatalf("%d SubjectAccessReviews, want %d: %+v", len(sars), len(want), sars)
	}
	for i, s := range sars {
		if s.ResourceAttributes != nil || s.NonResourceAttributes == nil || *s.NonResourceAttributes != want[i] ||
			s.User != "alice" || s.UID != "a-1" || !slices.Equal(s.Groups, []string{"team-a", user.AllAuthenticated}) {
			t.Errorf("SubjectAccessReview %d: %+v (non-resource %+v), want alice (a-1, team-a, system:authenticated) on %+v",
				i, s, s.NonResourceAttributes, want[i])
		}
	}

	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP kubemon_http_requests_refused_total HTTP API requests refused by Kubernetes-delegated authentication (code 401) or authorization (code 403).
# TYPE kubemon_http_requests_refused_total counter
kubemon_http_requests_refused_total{code="401"} 3
kubemon_http_requests_refused_total{code="403"} 2
`), "kubemon_http_requests_refused_total"); err != nil {
		t.Error(err)
	}
	var forbidden int
	for _, r := range logs.records(t) {
		if r["msg"] == "http request forbidden" && r["user"] == "alice" {
			forbidden++
		}
	}
	if forbidden != 2 {
		t.Errorf("%d forbidden requests logged, want 2", forbidden)
	}
}

// TestDelegatingFailsClosed: whatever goes wrong with the Kubernetes API,
// no request gets through.
func TestDelegatingFailsClosed(t *testing.T) {
	t.Run("SubjectAccessReview 500", func(t *testing.T) {
		t.Parallel()
		kube := newFakeKube(t)
		kube.failSARs = true
		url, rec := serveFiltered(t, kube, nil, io.Discard)
		c := authCase{method: "GET", path: "/api/v1/query", token: "good", code: 403,
			body: `forbidden: User "alice" cannot get path "/api/v1/query": the authorization check failed`}
		code, header, body := do(t, url, c)
		checkResponse(t, c, code, header, body)
		if rec.take().called {
			t.Error("the handler was called")
		}
		if _, sars := kube.counts(); len(sars) < 2 {
			t.Errorf("%d SubjectAccessReviews, want retries", len(sars))
		}
	})
	t.Run("TokenReview 500", func(t *testing.T) {
		t.Parallel()
		kube := newFakeKube(t)
		kube.failTokens = true
		url, rec := serveFiltered(t, kube, nil, io.Discard)
		c := authCase{method: "GET", path: "/api/v1/query", token: "good", code: 401}
		code, header, body := do(t, url, c)
		checkResponse(t, c, code, header, body)
		if rec.take().called {
			t.Error("the handler was called")
		}
		if tr, _ := kube.counts(); tr["good"] < 2 {
			t.Errorf("%d TokenReviews, want retries", tr["good"])
		}
	})
	t.Run("API server down", func(t *testing.T) {
		t.Parallel()
		kube := newFakeKube(t)
		url, rec := serveFiltered(t, kube, nil, io.Discard)
		kube.srv.Close()
		c := authCase{method: "GET", path: "/api/v1/query", token: "good", code: 401}
		code, header, body := do(t, url, c)
		checkResponse(t, c, code, header, body)
		if rec.take().called {
			t.Error("the handler was called")
		}
		c = authCase{method: "GET", path: "/healthz", code: 200, body: "ok"}
		code, header, body = do(t, url, c)
		checkResponse(t, c, code, header, body)
	})
}
