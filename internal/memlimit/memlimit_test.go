package memlimit

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func TestCgroupLimit(t *testing.T) {
	for _, tt := range []struct {
		name    string
		files   map[string]string
		limit   int64
		ok, err bool
	}{
		{"v2 limit", map[string]string{"memory.max": "914358272\n"}, 914358272, true, false},
		{"v2 max", map[string]string{"memory.max": "max\n"}, 0, false, false},
		{"v1 limit", map[string]string{"memory/memory.limit_in_bytes": "536870912\n"}, 536870912, true, false},
		{"v1 unlimited", map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n"}, 0, false, false},
		{"v2 wins over v1", map[string]string{"memory.max": "1000", "memory/memory.limit_in_bytes": "2000"}, 1000, true, false},
		{"none", nil, 0, false, false},
		{"garbage", map[string]string{"memory.max": "lots"}, 0, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for f, c := range tt.files {
				p := filepath.Join(root, f)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(c), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			limit, ok, err := CgroupLimit(root)
			if limit != tt.limit || ok != tt.ok || (err != nil) != tt.err {
				t.Errorf("CgroupLimit = %d, %v, %v; want %d, %v, error %v", limit, ok, err, tt.limit, tt.ok, tt.err)
			}
		})
	}
}

func TestSet(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1)) // restore
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "memory.max"), []byte("1000000000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOMEMLIMIT", "")
	set, why, err := Set(root)
	if err != nil || set != 900000000 || debug.SetMemoryLimit(-1) != 900000000 {
		t.Errorf("Set = %d, %q, %v; runtime limit %d; want 900000000", set, why, err, debug.SetMemoryLimit(-1))
	}
	debug.SetMemoryLimit(math.MaxInt64)
	t.Setenv("GOMEMLIMIT", "2GiB")
	if set, why, _ := Set(root); set != 0 || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Errorf("with GOMEMLIMIT set: Set = %d (%s), runtime limit %d: the user's setting must win", set, why, debug.SetMemoryLimit(-1))
	}
}
