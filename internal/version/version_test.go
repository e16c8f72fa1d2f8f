package version

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		name, version, revision, goVersion, want string
	}{
		{"release", "v0.1.0-3-gabc1234", "abc1234def5678abc1234def5678abc1234def56", "go1.26.8",
			"kubemon v0.1.0-3-gabc1234 (revision abc1234def5678abc1234def5678abc1234def56, go1.26.8)"},
		{"no revision", "dev", "", "go1.26.8", "kubemon dev (go1.26.8)"},
		{"empty version", "", "abc", "go1.26.8", "kubemon dev (revision abc, go1.26.8)"},
		{"dirty", "abc1234-dirty", "abc1234-dirty", "go1.26.0", "kubemon abc1234-dirty (revision abc1234-dirty, go1.26.0)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := format(tc.version, tc.revision, tc.goVersion); got != tc.want {
				t.Errorf("format(%q, %q, %q) = %q, want %q", tc.version, tc.revision, tc.goVersion, got, tc.want)
			}
		})
	}
}

func TestRevisionFrom(t *testing.T) {
	settings := func(kv ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{}
		for i := 0; i < len(kv); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return bi
	}
	for _, tc := range []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"no build info", nil, false, ""},
		{"nil but ok", nil, true, ""},
		{"no vcs stamp", settings("-trimpath", "true", "CGO_ENABLED", "0"), true, ""},
		{"clean", settings("vcs", "git", "vcs.revision", "0123abcd", "vcs.modified", "false"), true, "0123abcd"},
		{"modified", settings("vcs.modified", "true", "vcs.revision", "0123abcd"), true, "0123abcd-dirty"},
		{"modified without revision", settings("vcs.modified", "true"), true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := revisionFrom(tc.info, tc.ok); got != tc.want {
				t.Errorf("revisionFrom() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	if Version == "" {
		t.Error("Version is empty")
	}
	if GoVersion != runtime.Version() {
		t.Errorf("GoVersion = %q, want %q", GoVersion, runtime.Version())
	}
	if got, want := String(), format(Version, Revision, GoVersion); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
