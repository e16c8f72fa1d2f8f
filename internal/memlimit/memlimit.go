// Package memlimit sets the Go runtime's soft memory limit from the
// container's memory limit, so that the garbage collector works harder as
// the process nears its cgroup's limit instead of being OOM-killed at a
// heap that GOGC alone lets grow to twice the live data.
package memlimit

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// Ratio is the share of the cgroup's limit given to the Go runtime; the
// rest is for what the runtime does not count (thread stacks outside the
// heap, mmapped TSDB chunks and index files in the page cache are not
// charged here but their mappings are).
const Ratio = 0.9

// unlimited is cgroup v1's "no limit" (a page-aligned max int64) and above.
const unlimited = math.MaxInt64 / 2

// CgroupLimit reads the memory limit, in bytes, of the cgroup the process
// runs in under root (normally /sys/fs/cgroup): cgroup v2's memory.max,
// else v1's memory/memory.limit_in_bytes. ok is false when there is none
// ("max", or v1's huge value) or neither file exists.
func CgroupLimit(root string) (limit int64, ok bool, err error) {
	for _, f := range []string{filepath.Join(root, "memory.max"), filepath.Join(root, "memory", "memory.limit_in_bytes")} {
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, false, err
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("%s: %q: %w", f, s, err)
		}
		if n <= 0 || n >= unlimited {
			return 0, false, nil
		}
		return n, true, nil
	}
	return 0, false, nil
}

// Set sets the runtime's memory limit to Ratio of the cgroup's limit read
// under root, unless GOMEMLIMIT is set (the user's choice wins) or there is
// no limit. It returns the limit set, in bytes (0: none set), and why.
func Set(root string) (int64, string, error) {
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		return 0, "GOMEMLIMIT=" + v + " is set", nil
	}
	limit, ok, err := CgroupLimit(root)
	if err != nil || !ok {
		return 0, "no cgroup memory limit", err
	}
	set := int64(float64(limit) * Ratio)
	debug.SetMemoryLimit(set)
	return set, fmt.Sprintf("%.0f%% of the cgroup's memory limit of %d bytes", Ratio*100, limit), nil
}
