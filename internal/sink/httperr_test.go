package sink

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestCheckResponse(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		status     int
		header     string
		body       string
		ok         bool
		retry      bool
		after      time.Duration
		msgContain string
	}{
		{status: 204, ok: true},
		{status: 200, body: "{}", ok: true},
		{status: 400, body: "partial write: field type conflict\n", msgContain: "400 Bad Request: partial write: field type conflict"},
		{status: 404, body: "", msgContain: "404 Not Found: Not Found"},
		{status: 429, header: "7", retry: true, after: 7 * time.Second, msgContain: "too many"},
		{status: 503, body: "overloaded", retry: true, msgContain: "overloaded"},
		{status: 500, header: now.Add(time.Hour).UTC().Format(http.TimeFormat), retry: true, after: time.Hour},
	} {
		resp := &http.Response{StatusCode: tc.status, Status: http.StatusText(tc.status), Header: http.Header{}, Body: io.NopCloser(strings.NewReader(tc.body))}
		resp.Status = strconv.Itoa(tc.status) + " " + http.StatusText(tc.status)
		if tc.status == 429 {
			resp.Body = io.NopCloser(strings.NewReader("too many requests"))
		}
		if tc.header != "" {
			resp.Header.Set("Retry-After", tc.header)
		}
		err := CheckResponse(resp)
		if tc.ok {
			if err != nil {
				t.Errorf("%d: %v, want nil", tc.status, err)
			}
			continue
		}
		if err == nil {
			t.Fatalf("%d: nil error", tc.status)
		}
		retry, after := IsRetryable(err)
		if retry != tc.retry {
			t.Errorf("%d: retryable %v, want %v (%v)", tc.status, retry, tc.retry, err)
		}
		if tc.after > 0 && !(after > tc.after-2*time.Second && after <= tc.after) {
			t.Errorf("%d: retry after %v, want about %v", tc.status, after, tc.after)
		}
		if !strings.Contains(err.Error(), tc.msgContain) {
			t.Errorf("%d: error %q lacks %q", tc.status, err, tc.msgContain)
		}
	}
	if ok, _ := IsRetryable(errors.New("plain")); ok {
		t.Error("a plain error is not retryable")
	}
}
