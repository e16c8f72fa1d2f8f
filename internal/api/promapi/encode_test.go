package promapi

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
)

func TestAppendFloat(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{0, `"0"`},
		{1, `"1"`},
		{-2.5, `"-2.5"`},
		{0.1, `"0.1"`},
		{1e-6, `"0.000001"`},
		{1e-7, `"1e-07"`},
		{123456789012, `"123456789012"`},
		{1e21, `"1e+21"`},
		{math.Inf(1), `"+Inf"`},
		{math.Inf(-1), `"-Inf"`},
		{math.NaN(), `"NaN"`},
	} {
		if got := string(appendFloat(nil, tc.in)); got != tc.want {
			t.Errorf("appendFloat(%v) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestAppendTimestamp(t *testing.T) {
	for _, tc := range []struct {
		in   int64
		want string
	}{
		{0, "0"},
		{1000, "1"},
		{1435781451781, "1435781451.781"},
		{1435781451001, "1435781451.001"},
		{1435781451010, "1435781451.010"}, // Prometheus keeps three digits.,
		{1435781451100, "1435781451.100"},
		{-1500, "-1.500"},
	} {
		if got := string(appendTimestamp(nil, tc.in)); got != tc.want {
			t.Errorf("appendTimestamp(%d) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestAppendString(t *testing.T) {
	for _, in := range []string{
		"", "plain", `quote " backslash \`, "new\nline\ttab\rcr", "\x00\x1f ctrl",
		"ünïcödé ✓ 🚀", "line\u2028sep\u2029", "bad\xffutf8", "<html>&",
	} {
		got := appendString(nil, in)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("appendString(%q) = %s: invalid JSON: %v", in, got, err)
			continue
		}
		want, _ := json.Marshal(in) // Replaces invalid UTF-8 the same way.
		var wantBack string
		if err := json.Unmarshal(want, &wantBack); err != nil {
			t.Fatal(err)
		}
		if back != wantBack {
			t.Errorf("appendString(%q) round-trips to %q, want %q", in, back, wantBack)
		}
	}
}

func TestAppendQueryDataHistogram(t *testing.T) {
	h := &histogram.FloatHistogram{
		Count: 5, Sum: 12.5, ZeroThreshold: 0.001, ZeroCount: 1,
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}},
		PositiveBuckets: []float64{3, 1},
	}
	vec := promql.Vector{{T: 1500, H: h, Metric: labels.FromStrings("a", "b")}}
	got, err := appendQueryData(nil, vec)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"resultType":"vector","result":[{"metric":{"a":"b"},"histogram":[1.500,{"count":"5","sum":"12.5","buckets":[[3,"-0.001","0.001","1"],[0,"0.5","1","3"],[0,"1","2","1"]]}]}]}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}

	m := promql.Matrix{{Metric: labels.EmptyLabels(), Floats: []promql.FPoint{{T: 0, F: 1}}, Histograms: []promql.HPoint{{T: 1000, H: h}}}}
	got, err = appendQueryData(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(got) {
		t.Errorf("invalid JSON %s", got)
	}
	want = `{"resultType":"matrix","result":[{"metric":{},"values":[[0,"1"]],"histograms":[[1,{"count":"5","sum":"12.5","buckets":[[3,"-0.001","0.001","1"],[0,"0.5","1","3"],[0,"1","2","1"]]}]]}]}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestParseTimeAndDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"1700000000", time.Unix(1700000000, 0), true},
		{"1700000000.1234", time.Unix(1700000000, 123e6), true},
		{"-1.5", time.Unix(-2, 5e8), true},
		{"2023-11-14T22:13:20Z", time.Unix(1700000000, 0), true},
		{"2023-11-14T23:13:20.5+01:00", time.Unix(1700000000, 5e8), true},
		{minTimeFormatted, minTime, true},
		{maxTimeFormatted, maxTime, true},
		{"", time.Time{}, false},
		{"now", time.Time{}, false},
		{"Inf", time.Time{}, false},
		{"1e300", time.Time{}, false},
	} {
		got, err := parseTime(tc.in)
		if (err == nil) != tc.ok || (tc.ok && !got.Equal(tc.want)) {
			t.Errorf("parseTime(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"15", 15 * time.Second, true},
		{"0.5", 500 * time.Millisecond, true},
		{"1m30s", 90 * time.Second, true},
		{"1h", time.Hour, true},
		{"2d", 48 * time.Hour, true},
		{"", 0, false},
		{"1x", 0, false},
		{"1e300", 0, false},
		{"NaN", 0, false},
	} {
		got, err := parseDuration(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestFormatThousands(t *testing.T) {
	for in, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 11000: "11,000", 1234567: "1,234,567", -1000: "-1,000"} {
		if got := formatThousands(in); got != want {
			t.Errorf("formatThousands(%d) = %q, want %q", in, got, want)
		}
	}
}
