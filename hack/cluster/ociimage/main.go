// Command ociimage writes a one-layer OCI image layout tar holding one
// static binary as the entrypoint, for `ctr images import` without a
// registry.
//
//	ociimage -binary ./pause -name localhost/pause:kubemon -out pause.tar [-- args...]
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
	"time"
)

func main() {
	bin := flag.String("binary", "", "static binary, installed as /entrypoint")
	name := flag.String("name", "", "image name, e.g. localhost/pause:kubemon")
	out := flag.String("out", "", "output tar")
	flag.Parse()
	if *bin == "" || *name == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "ociimage: -binary, -name and -out are required")
		os.Exit(2)
	}
	if err := run(*bin, *name, *out, flag.Args()); err != nil {
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

func run(bin, name, out string, args []string) error {
	exe, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	// The layer: /entrypoint, plus /tmp.
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	mod := time.Unix(0, 0)
	if err := tw.WriteHeader(&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777, ModTime: mod}); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "entrypoint", Mode: 0o755, Size: int64(len(exe)), ModTime: mod}); err != nil {
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

	cfgJSON, err := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Entrypoint": append([]string{"/entrypoint"}, args...)},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{diffID}},
	})
	if err != nil {
		return err
	}
	config := newBlob("application/vnd.oci.image.config.v1+json", cfgJSON)
	manJSON, err := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": config.desc(), "layers": []any{layer.desc()},
	})
	if err != nil {
		return err
	}
	manifest := newBlob("application/vnd.oci.image.manifest.v1+json", manJSON)
	md := manifest.desc()
	md["annotations"] = map[string]string{"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name}
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
