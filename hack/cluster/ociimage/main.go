// Command ociimage writes a one-layer OCI image layout tar holding one
// static binary as the entrypoint (plus /tmp, mode 1777), without a Docker
// daemon: for `ctr images import`, `skopeo copy oci-archive:...` or
// `crane push`.
//
//	ociimage -binary ./pause -name localhost/pause:kubemon -out pause.tar [-- args...]
//	ociimage -binary ./kubemon -name localhost/kubemon:dev -out kubemon.tar \
//	  -path /kubemon -user 65534:65534 -cmd serve -label org.opencontainers.image.version=v0.1.0
//
// Arguments after the flags are appended to the image's Entrypoint; -cmd
// arguments are its Cmd (the default arguments, which a pod's args replace).
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// image is what goes into the image besides the binary's bytes.
type image struct {
	name   string            // the image name, e.g. localhost/pause:kubemon
	path   string            // absolute path of the binary in the image
	user   string            // config.User ("" = root)
	arch   string            // the image config's architecture
	labels map[string]string // config.Labels
	args   []string          // appended to the Entrypoint
	cmd    []string          // config.Cmd
}

// labelFlag collects repeated -label k=v flags.
type labelFlag map[string]string

func (l labelFlag) String() string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k+"="+l[k])
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

func (l labelFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("label %q is not key=value", v)
	}
	l[k] = val
	return nil
}

func main() {
	bin := flag.String("binary", "", "static binary, installed at -path")
	name := flag.String("name", "", "image name, e.g. localhost/pause:kubemon")
	out := flag.String("out", "", "output tar")
	binPath := flag.String("path", "/entrypoint", "absolute path of the binary in the image (the Entrypoint)")
	user := flag.String("user", "", "user[:group] the image runs as (config.User), e.g. 65534:65534; empty: root")
	arch := flag.String("arch", "amd64", "the image's architecture (GOARCH of the binary)")
	labels := labelFlag{}
	var cmd []string
	flag.Func("cmd", "an argument of the image's Cmd (default arguments), repeatable", func(v string) error {
		cmd = append(cmd, v)
		return nil
	})
	flag.Var(labels, "label", "key=value image label (config.Labels), repeatable, e.g. org.opencontainers.image.version=v0.1.0")
	flag.Parse()
	if *bin == "" || *name == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "ociimage: -binary, -name and -out are required")
		os.Exit(2)
	}
	p := path.Clean(*binPath)
	if !path.IsAbs(p) || p == "/" || p == "/tmp" || strings.HasPrefix(p, "/tmp/") {
		fmt.Fprintf(os.Stderr, "ociimage: -path %q must be an absolute file path outside /tmp\n", *binPath)
		os.Exit(2)
	}
	img := image{name: *name, path: p, user: *user, arch: *arch, labels: labels, args: flag.Args(), cmd: cmd}
	if err := run(*bin, *out, img); err != nil {
		fmt.Fprintln(os.Stderr, "ociimage:", err)
		os.Exit(1)
	}
}

type blob struct {
	media  string
	data   []byte
	digest string
}

func newBlob(media string, data []byte) blob {
	return blob{media, data, fmt.Sprintf("sha256:%x", sha256.Sum256(data))}
}

func (b blob) desc() map[string]any {
	return map[string]any{"mediaType": b.media, "digest": b.digest, "size": len(b.data)}
}

func run(bin, out string, img image) error {
	exe, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	// The layer: the binary's parent directories, the binary, and /tmp.
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	mod := time.Unix(0, 0)
	if err := tw.WriteHeader(&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777, ModTime: mod}); err != nil {
		return err
	}
	rel := strings.TrimPrefix(img.path, "/")
	var dirs []string
	for d := path.Dir(rel); d != "."; d = path.Dir(d) {
		dirs = append([]string{d}, dirs...)
	}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mod}); err != nil {
			return err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: rel, Mode: 0o755, Size: int64(len(exe)), ModTime: mod}); err != nil {
		return err
	}
	if _, err := tw.Write(exe); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	diffID := fmt.Sprintf("sha256:%x", sha256.Sum256(raw.Bytes()))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	layer := newBlob("application/vnd.oci.image.layer.v1.tar+gzip", gz.Bytes())

	cfg := map[string]any{"Entrypoint": append([]string{img.path}, img.args...)}
	if len(img.cmd) > 0 {
		cfg["Cmd"] = img.cmd
	}
	if img.user != "" {
		cfg["User"] = img.user
	}
	if len(img.labels) > 0 {
		cfg["Labels"] = img.labels
	}
	cfgJSON, err := json.Marshal(map[string]any{
		"architecture": img.arch, "os": "linux",
		"config": cfg,
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{diffID}},
	})
	if err != nil {
		return err
	}
	config := newBlob("application/vnd.oci.image.config.v1+json", cfgJSON)
	man := map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": config.desc(), "layers": []any{layer.desc()},
	}
	if len(img.labels) > 0 {
		// The labels are also the manifest's annotations, where OCI tools
		// and registries look for org.opencontainers.image.*.
		man["annotations"] = img.labels
	}
	manJSON, err := json.Marshal(man)
	if err != nil {
		return err
	}
	manifest := newBlob("application/vnd.oci.image.manifest.v1+json", manJSON)
	md := manifest.desc()
	md["annotations"] = map[string]string{"io.containerd.image.name": img.name, "org.opencontainers.image.ref.name": img.name}
	index, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []any{md}})
	if err != nil {
		return err
	}

	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	ow := tar.NewWriter(f)
	files := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
	}
	for _, b := range []blob{layer, config, manifest} {
		files = append(files, struct {
			name string
			data []byte
		}{"blobs/sha256/" + b.digest[len("sha256:"):], b.data})
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := ow.WriteHeader(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mod}); err != nil {
			return err
		}
	}
	for _, fl := range files {
		if err := ow.WriteHeader(&tar.Header{Name: fl.name, Mode: 0o644, Size: int64(len(fl.data)), ModTime: mod}); err != nil {
			return err
		}
		if _, err := ow.Write(fl.data); err != nil {
			return err
		}
	}
	if err := ow.Close(); err != nil {
		return err
	}
	return f.Close()
}
