package sink

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxErrorBody bounds how much of an error answer is read for its message.
const maxErrorBody = 4 << 10

// CheckResponse classifies an HTTP answer to a write: nil for 2xx; for 429
// and 5xx an error wrapped by Retryable (with the Retry-After delay, in
// seconds or as an HTTP date, when the server gives one); for anything else
// an error that is not retried. Errors name the status and carry the
// server's message (the first 4 KiB of the body, trimmed). The body is read
// but not closed.
func CheckResponse(resp *http.Response) error {
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	msg := strings.TrimSpace(string(b))
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	err := fmt.Errorf("server answered %s: %s", resp.Status, msg)
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode/100 == 5 {
		return Retryable(err, retryAfter(resp.Header.Get("Retry-After"), time.Now()))
	}
	return err
}

// retryAfter parses a Retry-After header (delay-seconds or HTTP-date); 0
// when absent or unparsable.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
