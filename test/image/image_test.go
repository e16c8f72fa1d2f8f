// Package image tests the container image hack/image.sh builds: it runs the
// script, reads the OCI image layout tar it writes and runs the binary from
// the image's layer.
package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

const imageName = "localhost/kubemon:image-test"

// descriptor is an OCI content descriptor.
type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
}

// imageConfig is the part of an OCI image config the test reads.
type imageConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		User       string
		Entrypoint []string
		Cmd        []string
		Labels     map[string]string
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

func TestImage(t *testing.T) {
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-10*time.Second))
		defer cancel()
	}

	// The revision the image should carry. Other commits may land while
	// the image builds, so HEAD is read before and after.
	_, gitErr := exec.LookPath("git")
	headBefore := gitHead(t, repo, gitErr)

	out := filepath.Join(t.TempDir(), "kubemon image.tar") // a space, to test the script's quoting
	cmd := exec.CommandContext(ctx, filepath.Join(repo, "hack", "image.sh"), out)
	cmd.Dir = t.TempDir() // the script runs from any directory
	cmd.Env = append(os.Environ(), "IMAGE="+imageName)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("hack/image.sh: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("hack/image.sh took %v; stderr:\n%s", time.Since(start).Round(time.Second), stderr.String())
	if got := strings.TrimSpace(stdout.String()); got != out {
		t.Errorf("hack/image.sh printed %q on stdout, want the tar's path %q", got, out)
	}
	headAfter := gitHead(t, repo, gitErr)

	files := readTar(t, out)
	if got := string(files["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %q", got)
	}
	var index struct {
		SchemaVersion int          `json:"schemaVersion"`
		Manifests     []descriptor `json:"manifests"`
	}
	mustUnmarshal(t, "index.json", files["index.json"], &index)
	if index.SchemaVersion != 2 || len(index.Manifests) != 1 {
		t.Fatalf("index.json = %+v, want schemaVersion 2 and one manifest", index)
	}
	if got := index.Manifests[0].Annotations["io.containerd.image.name"]; got != imageName {
		t.Errorf("image name = %q, want %q (from $IMAGE)", got, imageName)
	}
	if got := index.Manifests[0].Annotations["org.opencontainers.image.ref.name"]; got != imageName {
		t.Errorf("ref name = %q, want %q", got, imageName)
	}
	var manifest struct {
		Config      descriptor        `json:"config"`
		Layers      []descriptor      `json:"layers"`
		Annotations map[string]string `json:"annotations"`
	}
	mustUnmarshal(t, "manifest", blob(t, files, index.Manifests[0]), &manifest)
	if len(manifest.Layers) != 1 {
		t.Fatalf("manifest has %d layers, want 1", len(manifest.Layers))
	}
	var config imageConfig
	mustUnmarshal(t, "config", blob(t, files, manifest.Config), &config)

	c := config.Config
	if c.User != "65534:65534" {
		t.Errorf("config.User = %q, want 65534:65534", c.User)
	}
	if !slices.Equal(c.Entrypoint, []string{"/kubemon"}) {
		t.Errorf("config.Entrypoint = %q, want [/kubemon]", c.Entrypoint)
	}
	if !slices.Equal(c.Cmd, []string{"serve"}) {
		t.Errorf("config.Cmd = %q, want [serve]", c.Cmd)
	}
	if config.OS != "linux" || config.Architecture != runtime.GOARCH {
		t.Errorf("platform = %s/%s, want linux/%s", config.OS, config.Architecture, runtime.GOARCH)
	}
	imgVersion, imgRevision := c.Labels["org.opencontainers.image.version"], c.Labels["org.opencontainers.image.revision"]
	if imgVersion == "" || c.Labels["org.opencontainers.image.source"] == "" {
		t.Errorf("config.Labels = %v, want the version and source labels", c.Labels)
	}
	for k, v := range c.Labels {
		if manifest.Annotations[k] != v {
			t.Errorf("manifest annotation %s = %q, want the label's %q", k, manifest.Annotations[k], v)
		}
	}

	// The layer: its uncompressed digest is the config's diff ID.
	zr, err := gzip.NewReader(bytes.NewReader(blob(t, files, manifest.Layers[0])))
	if err != nil {
		t.Fatalf("layer: %v", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("layer: %v", err)
	}
	if want := fmt.Sprintf("sha256:%x", sha256.Sum256(raw)); !slices.Equal(config.RootFS.DiffIDs, []string{want}) || config.RootFS.Type != "layers" {
		t.Errorf("rootfs = %+v, want layers with diff_ids [%s]", config.RootFS, want)
	}
	var exe []byte
	var sawTmp bool
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("layer: %v", err)
		}
		mode := h.FileInfo().Mode()
		switch strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/") {
		case "kubemon":
			if h.Typeflag != tar.TypeReg || mode.Perm()&0o111 == 0 {
				t.Errorf("/kubemon: type %q mode %v, want an executable file", h.Typeflag, mode)
			}
			if exe, err = io.ReadAll(tr); err != nil {
				t.Fatalf("layer: %v", err)
			}
		case "tmp":
			sawTmp = true
			if !mode.IsDir() || mode.Perm() != 0o777 || mode&os.ModeSticky == 0 {
				t.Errorf("/tmp: mode %v, want drwxrwxrwt (1777)", mode)
			}
		}
	}
	if !sawTmp {
		t.Error("the layer has no /tmp")
	}
	if exe == nil {
		t.Fatal("the layer has no /kubemon")
	}

	bin := filepath.Join(t.TempDir(), "kubemon")
	if err := os.WriteFile(bin, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("/kubemon is not an ELF binary: %v", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("/kubemon has a PT_INTERP program header: it is dynamically linked, and a scratch image has no loader")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("/kubemon needs shared libraries %q", libs)
	}
	f.Close()

	if runtime.GOOS != "linux" {
		t.Skipf("cannot run the linux binary on %s", runtime.GOOS)
	}
	vctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	got, err := exec.CommandContext(vctx, bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("/kubemon version: %v\n%s", err, got)
	}
	t.Logf("/kubemon version: %s", bytes.TrimSpace(got))
	if !strings.HasPrefix(string(got), "kubemon "+imgVersion+" ") {
		t.Errorf("/kubemon version = %q, want it to start with kubemon and the image's version label %q", got, imgVersion)
	}
	if gitErr != nil {
		t.Skipf("SKIPPING THE REVISION CHECK: git is not available (%v), so the image was built without a revision; everything else passed", gitErr)
	}
	if imgRevision != headBefore && imgRevision != headAfter {
		t.Errorf("the image's revision label = %q, want git rev-parse HEAD = %q", imgRevision, headAfter)
	}
	if !strings.Contains(string(got), headBefore) && !strings.Contains(string(got), headAfter) {
		t.Errorf("/kubemon version = %q, want it to contain git rev-parse HEAD = %q", got, headAfter)
	}
}

// gitHead returns the repository's HEAD commit, or "" without git.
func gitHead(t *testing.T, repo string, gitErr error) string {
	t.Helper()
	if gitErr != nil {
		return ""
	}
	out, err := exec.Command("git", "-C", repo, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// readTar returns the regular files of a tar by name.
func readTar(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if files[h.Name], err = io.ReadAll(tr); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
}

// blob returns the content a descriptor points at, checking its size and digest.
func blob(t *testing.T, files map[string][]byte, d descriptor) []byte {
	t.Helper()
	hex, ok := strings.CutPrefix(d.Digest, "sha256:")
	if !ok {
		t.Fatalf("descriptor %+v: not a sha256 digest", d)
	}
	data, ok := files["blobs/sha256/"+hex]
	if !ok {
		t.Fatalf("descriptor %+v: no blob blobs/sha256/%s", d, hex)
	}
	if int64(len(data)) != d.Size || fmt.Sprintf("%x", sha256.Sum256(data)) != hex {
		t.Fatalf("descriptor %+v: the blob has %d bytes and digest sha256:%x", d, len(data), sha256.Sum256(data))
	}
	return data
}

func mustUnmarshal(t *testing.T, what string, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, data)
	}
}
