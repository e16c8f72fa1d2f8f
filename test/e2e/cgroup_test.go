package e2e

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// cpuSampler records a container's cumulative CPU time, read from its
// cgroup (v1 cpuacct.usage in ns, or v2 cpu.stat usage_usec) every 250 ms:
// the truth a reported CPU rate is checked against, whatever CPU the
// machine could give the container.
type cpuSampler struct {
	mu   sync.Mutex
	at   []time.Time
	secs []float64 // cumulative CPU seconds
	stop chan struct{}
}

// startCPUSampler finds the cgroup of the container (its ID as the kubelet
// reports it, "containerd://<id>") under the node's cgroup root and samples
// it until the test ends.
func startCPUSampler(t *testing.T, node, containerID string) *cpuSampler {
	t.Helper()
	id := containerID[strings.LastIndex(containerID, "/")+1:]
	var file string
	for _, root := range []string{"/sys/fs/cgroup/cpuacct/" + node, "/sys/fs/cgroup/cpu,cpuacct/" + node, "/sys/fs/cgroup/" + node} {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || file != "" {
				return filepath.SkipDir
			}
			if d.IsDir() && strings.Contains(d.Name(), id) {
				for _, f := range []string{"cpuacct.usage", "cpu.stat"} {
					if _, err := os.Stat(filepath.Join(p, f)); err == nil {
						file = filepath.Join(p, f)
						return filepath.SkipAll
					}
				}
			}
			return nil
		})
		if file != "" {
			break
		}
	}
	if file == "" {
		t.Fatalf("no cgroup of container %s under the node's cgroup root", id)
	}
	s := &cpuSampler{stop: make(chan struct{})}
	read := func() {
		v, err := cgroupCPUSeconds(file)
		if err != nil {
			return // the container may be gone at the end
		}
		s.mu.Lock()
		s.at, s.secs = append(s.at, time.Now()), append(s.secs, v)
		s.mu.Unlock()
	}
	read()
	if len(s.at) == 0 {
		t.Fatalf("reading %s failed", file)
	}
	go func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
				read()
			}
		}
	}()
	t.Cleanup(func() { close(s.stop) })
	return s
}

func cgroupCPUSeconds(file string) (float64, error) {
	if strings.HasSuffix(file, "cpuacct.usage") {
		b, err := os.ReadFile(file)
		if err != nil {
			return 0, err
		}
		ns, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
		return ns / 1e9, err
	}
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "usage_usec "); ok {
			us, err := strconv.ParseFloat(v, 64)
			return us / 1e6, err
		}
	}
	return 0, errors.New("no usage_usec in " + file)
}

// at interpolates the cumulative CPU seconds at time x; ok is false
// outside the sampled span.
func (s *cpuSampler) cumAt(x time.Time) (float64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 1; i < len(s.at); i++ {
		if !x.After(s.at[i]) && !x.Before(s.at[i-1]) {
			f := float64(x.Sub(s.at[i-1])) / float64(s.at[i].Sub(s.at[i-1]))
			return s.secs[i-1] + f*(s.secs[i]-s.secs[i-1]), true
		}
	}
	return 0, false
}

// first is the time of the first sample.
func (s *cpuSampler) first() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.at[0]
}

// rate is the container's CPU usage in cores over [from, to].
func (s *cpuSampler) rate(t *testing.T, from, to time.Time) float64 {
	t.Helper()
	a, ok1 := s.cumAt(from)
	b, ok2 := s.cumAt(to)
	if !ok1 || !ok2 || !to.After(from) {
		t.Fatalf("the cgroup samples do not cover %v..%v", from, to)
	}
	return (b - a) / to.Sub(from).Seconds()
}
