// Package ui serves kubemon's web UI: static files embedded in the binary
// (no CDN, nothing fetched at run time), every URL in them relative, so the
// UI works under any path prefix (kubectl proxy's
// /apis/kubemon.io/v1alpha1/, a reverse proxy's sub-path) with nothing to
// configure. The page holds no cluster data: it is served without
// credentials, and its API calls carry the caller's (a token it was given,
// or a proxy's).
package ui

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strings"
)

//go:embed static
var embedded embed.FS

// AssetPrefix is the URL path of the UI's assets; the page is at "/".
const AssetPrefix = "/ui/"

// Handler serves the UI.
type Handler struct {
	files map[string]file // by path under static/, "index.html" included
	csp   string
}

type file struct {
	body        []byte
	etag        string
	contentType string
}

// New reads the embedded files.
func New() (*Handler, error) { return newHandler(embedded, "static") }

func newHandler(fsys fs.FS, dir string) (*Handler, error) {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		return nil, err
	}
	h := &Handler{files: map[string]file{}}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = http.DetectContentType(b)
		}
		h.files[p] = file{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, contentType: ct}
		return nil
	})
	if err != nil {
		return nil, err
	}
	index, ok := h.files["index.html"]
	if !ok {
		return nil, errors.New("ui: index.html is missing")
	}
	index = h.withModulePreloads(index)
	h.files["index.html"] = index
	h.csp, err = contentSecurityPolicy(index.body)
	return h, err
}

// moduleScript is the page's entry module, before which the preloads go.
var moduleScript = regexp.MustCompile(`<script type="module" src="[^"]*"></script>`)

// withModulePreloads lists every module of the UI (*.js outside vendor/)
// in index.html as <link rel="modulepreload">, so that the browser fetches
// them all at once instead of one level of imports after another (three
// round trips and their parsing before the first query). A page without an
// entry module is left as it is.
func (h *Handler) withModulePreloads(index file) file {
	loc := moduleScript.FindIndex(index.body)
	if loc == nil {
		return index
	}
	var modules []string
	for p := range h.files {
		if strings.HasSuffix(p, ".js") && !strings.HasPrefix(p, "vendor/") {
			modules = append(modules, p)
		}
	}
	slices.Sort(modules)
	var links strings.Builder
	for _, p := range modules {
		fmt.Fprintf(&links, "<link rel=\"modulepreload\" href=\"%s\">\n", strings.TrimPrefix(AssetPrefix, "/")+p)
	}
	body := slices.Concat(index.body[:loc[0]], []byte(links.String()), index.body[loc[0]:])
	sum := sha256.Sum256(body)
	index.body, index.etag = body, `"`+hex.EncodeToString(sum[:8])+`"`
	return index
}

var inlineScript = regexp.MustCompile(`(?s)<script>(.*?)</script>`)

// contentSecurityPolicy allows the page's own files only, and its inline
// scripts by their hash.
func contentSecurityPolicy(index []byte) (string, error) {
	scripts := []string{"'self'"}
	for _, m := range inlineScript.FindAllSubmatch(index, -1) {
		sum := sha256.Sum256(m[1])
		scripts = append(scripts, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
	}
	return fmt.Sprintf("default-src 'self'; script-src %s; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "+
		"connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'", strings.Join(scripts, " ")), nil
}

// Register serves the page at GET / and the assets under AssetPrefix.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, "index.html") })
	mux.HandleFunc("GET "+AssetPrefix+"{file...}", func(w http.ResponseWriter, r *http.Request) {
		p := r.PathValue("file")
		if p == "index.html" {
			http.NotFound(w, r)
			return
		}
		h.serve(w, r, p)
	})
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, p string) {
	f, ok := h.files[p]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", f.contentType)
	hd.Set("ETag", f.etag)
	// Revalidated on every load (a new kubemon serves new files under the
	// same names); the ETag makes that a 304.
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	if p == "index.html" {
		hd.Set("Content-Security-Policy", h.csp)
		hd.Set("X-Frame-Options", "DENY")
	}
	if match := r.Header.Get("If-None-Match"); match != "" && match == f.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	_, _ = w.Write(f.body)
}
