package promapi

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

var (
	// minTime and maxTime are the defaults of optional time ranges; they are
	// the same values as Prometheus's v1.MinTime and v1.MaxTime.
	minTime = time.Unix(math.MinInt64/1000+62135596801, 0).UTC()
	maxTime = time.Unix(math.MaxInt64/1000-62135596801, 999999999).UTC()

	minTimeFormatted = minTime.Format(time.RFC3339Nano)
	maxTimeFormatted = maxTime.Format(time.RFC3339Nano)
)

// parseTime parses an RFC 3339 timestamp or (fractional) Unix seconds,
// rounded to the millisecond like Prometheus does.
func parseTime(s string) (time.Time, error) {
	if t, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(t) || math.IsInf(t, 0) || t >= float64(math.MaxInt64)/1000 || t <= float64(math.MinInt64)/1000 {
			return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
		}
		sec, frac := math.Modf(t)
		frac = math.Round(frac*1000) / 1000
		return time.Unix(int64(sec), int64(frac*float64(time.Second))).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	// time.Parse only handles 4-digit years; accept our own boundaries.
	switch s {
	case minTimeFormatted:
		return minTime, nil
	case maxTimeFormatted:
		return maxTime, nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
}

// parseTimeParam parses the optional time parameter name, returning def if
// it is absent.
func parseTimeParam(r *http.Request, name string, def time.Time) (time.Time, *apiError) {
	v := r.FormValue(name)
	if v == "" {
		return def, nil
	}
	t, err := parseTime(v)
	if err != nil {
		return time.Time{}, invalidParam(name, fmt.Errorf("invalid time value for '%s': %w", name, err))
	}
	return t, nil
}

// parseTimeRange parses the optional start and end parameters of the
// metadata endpoints.
func parseTimeRange(r *http.Request) (start, end time.Time, apiErr *apiError) {
	if start, apiErr = parseTimeParam(r, "start", minTime); apiErr != nil {
		return
	}
	if end, apiErr = parseTimeParam(r, "end", maxTime); apiErr != nil {
		return
	}
	if end.Before(start) {
		apiErr = invalidParam("end", errors.New("end timestamp must not be before start time"))
	}
	return
}

// parseDuration parses a Prometheus duration ("1m30s") or (fractional)
// seconds.
func parseDuration(s string) (time.Duration, error) {
	if d, err := strconv.ParseFloat(s, 64); err == nil {
		ts := d * float64(time.Second)
		if math.IsNaN(ts) || ts >= float64(math.MaxInt64) || ts < float64(math.MinInt64) {
			return 0, fmt.Errorf("cannot parse %q to a valid duration. It overflows int64", s)
		}
		return time.Duration(ts), nil
	}
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
}

// parseLimit parses the optional limit parameter; 0 means no limit.
func parseLimit(r *http.Request) (int, *apiError) {
	v := r.FormValue("limit")
	if v == "" {
		return 0, nil
	}
	limit, err := strconv.Atoi(v)
	if err != nil {
		return 0, invalidParam("limit", fmt.Errorf("cannot parse %q to a valid limit", v))
	}
	if limit < 0 {
		return 0, invalidParam("limit", errors.New("limit must be non-negative"))
	}
	return limit, nil
}

// parseMatchers parses the match[] parameters. Every selector must contain
// at least one matcher that does not match the empty string.
func (a *API) parseMatchers(r *http.Request) ([][]*labels.Matcher, *apiError) {
	values := r.Form["match[]"]
	if len(values) == 0 {
		return nil, nil
	}
	sets, err := a.parser.ParseMetricSelectors(values)
	if err != nil {
		return nil, invalidParam("match[]", err)
	}
outer:
	for _, set := range sets {
		for _, m := range set {
			if m != nil && !m.Matches("") {
				continue outer
			}
		}
		return nil, invalidParam("match[]", errors.New("match[] must contain at least one non-empty matcher"))
	}
	return sets, nil
}

// parseTimeout parses the optional timeout parameter; 0 means absent.
func parseTimeout(r *http.Request) (time.Duration, *apiError) {
	v := r.FormValue("timeout")
	if v == "" {
		return 0, nil
	}
	d, err := parseDuration(v)
	if err != nil {
		return 0, invalidParam("timeout", err)
	}
	if d <= 0 {
		return 0, invalidParam("timeout", fmt.Errorf("timeout must be positive, got %s", v))
	}
	return d, nil
}

// formatThousands renders n with comma thousands separators (11000 ->
// "11,000"), as in Prometheus's "too many points" error.
func formatThousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	pre := len(s) % 3
	if pre == 0 {
		pre = 3
	}
	b.WriteString(s[:pre])
	for i := pre; i < len(s); i += 3 {
		b.WriteByte(',')
		b.WriteString(s[i : i+3])
	}
	return b.String()
}
