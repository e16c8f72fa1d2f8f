package ui

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

func serve(t *testing.T, h *Handler, path, etag string) *httptest.ResponseRecorder {
	t.Helper()
	mux := http.NewServeMux()
	h.Register(mux)
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec
}

func TestEmbedded(t *testing.T) {
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	page := serve(t, h, "/", "")
	if page.Code != 200 || !strings.Contains(page.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", page.Code, page.Header().Get("Content-Type"))
	}
	// Every asset the page names is served, by a relative URL.
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page.Body.String(), -1)
	if len(refs) == 0 {
		t.Fatal("the page names no asset")
	}
	for _, m := range refs {
		ref := m[1]
		if strings.HasPrefix(ref, "/") || strings.Contains(ref, "://") {
			t.Errorf("%s: not a relative URL (the UI must work under any path prefix)", ref)
			continue
		}
		if r := serve(t, h, "/"+ref, ""); r.Code != 200 || r.Body.Len() == 0 {
			t.Errorf("%s: %d, %d bytes", ref, r.Code, r.Body.Len())
		}
	}
	// The inline script runs: the policy names its hash.
	csp := page.Header().Get("Content-Security-Policy")
	scripts := inlineScript.FindAllStringSubmatch(page.Body.String(), -1)
	if len(scripts) == 0 {
		t.Fatal("no inline script (the trailing-slash redirect)")
	}
	for _, s := range scripts {
		sum := sha256.Sum256([]byte(s[1]))
		if h := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, h) {
			t.Errorf("the policy %q lacks the inline script's hash %s", csp, h)
		}
	}
	if !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("policy %q", csp)
	}
}

func TestServe(t *testing.T) {
	h, err := newHandler(fstest.MapFS{
		"s/index.html": {Data: []byte("<script>a()</script>")},
		"s/app.js":     {Data: []byte("x()")},
		"s/v/u.css":    {Data: []byte("b{}")},
	}, "s")
	if err != nil {
		t.Fatal(err)
	}
	js := serve(t, h, "/ui/app.js", "")
	if js.Code != 200 || js.Body.String() != "x()" || !strings.Contains(js.Header().Get("Content-Type"), "javascript") ||
		js.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("app.js: %d %q %v", js.Code, js.Body.String(), js.Header())
	}
	if r := serve(t, h, "/ui/app.js", js.Header().Get("ETag")); r.Code != http.StatusNotModified || r.Body.Len() != 0 {
		t.Errorf("revalidation: %d with %d bytes, want 304 and none", r.Code, r.Body.Len())
	}
	if r := serve(t, h, "/ui/v/u.css", ""); r.Code != 200 || !strings.HasPrefix(r.Header().Get("Content-Type"), "text/css") {
		t.Errorf("u.css: %d %s", r.Code, r.Header().Get("Content-Type"))
	}
	for _, p := range []string{"/ui/index.html", "/ui/missing.js", "/ui/", "/index.html"} {
		if r := serve(t, h, p, ""); r.Code != 404 {
			t.Errorf("%s: %d, want 404", p, r.Code)
		}
	}
	if _, err := newHandler(fstest.MapFS{"s/app.js": {Data: []byte("x")}}, "s"); err == nil {
		t.Error("no index.html accepted")
	}
}
