package ui

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestModulePreloads: the served page preloads every module of the UI, each
// link names a file the handler serves, and nothing else is preloaded.
func TestModulePreloads(t *testing.T) {
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	get := func(p string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, p, nil))
		return w
	}
	page := get("/").Body.String()
	links := regexp.MustCompile(`<link rel="modulepreload" href="([^"]+)">`).FindAllStringSubmatch(page, -1)
	preloaded := map[string]bool{}
	for _, l := range links {
		preloaded[l[1]] = true
		if w := get("/" + l[1]); w.Code != http.StatusOK || !strings.Contains(w.Header().Get("Content-Type"), "javascript") {
			t.Errorf("preload %s: HTTP %d, %s", l[1], w.Code, w.Header().Get("Content-Type"))
		}
	}
	var modules int
	for p := range h.files {
		if !strings.HasSuffix(p, ".js") || strings.HasPrefix(p, "vendor/") {
			continue
		}
		modules++
		if !preloaded["ui/"+p] {
			t.Errorf("module %s is not preloaded", p)
		}
	}
	if modules < 10 || len(links) != modules {
		t.Errorf("%d preloads for %d modules", len(links), modules)
	}
	if i, j := strings.Index(page, `rel="modulepreload"`), strings.Index(page, `<script type="module"`); i < 0 || j < i {
		t.Errorf("the preloads must come before the entry module (at %d, %d)", i, j)
	}
}
