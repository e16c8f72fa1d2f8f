package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// browser is a headless Chromium (Debian's) driven over the DevTools
// protocol. It collects what went wrong on its pages: console errors,
// uncaught exceptions, browser log errors (a refused script, a blocked
// resource) and requests that failed or answered 4xx/5xx.
type browser struct {
	ctx context.Context

	mu       sync.Mutex
	problems []string
	requests []string // every URL requested, in order
}

// chromium is the browser the UI tests drive; hack/deps.sh installs it.
const chromium = "/usr/bin/chromium"

// Desktop and phone are the window sizes the UI is checked at.
var (
	desktop = viewport{"desktop", 1400, 900}
	phone   = viewport{"phone", 390, 844}
)

type viewport struct {
	name          string
	width, height int64
}

// newBrowser starts Chromium for t; it is stopped when t ends.
func newBrowser(t testing.TB) *browser {
	t.Helper()
	path := chromium
	if _, err := os.Stat(path); err != nil {
		if p, lerr := exec.LookPath("chromium"); lerr == nil {
			path = p
		} else {
			t.Skipf("SKIPPED: %s is missing (%v): the browser tests need Debian's chromium; install it with hack/deps.sh", chromium, err)
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // root in a container has no user namespaces for the sandbox
		chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(int(desktop.width), int(desktop.height)),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{ctx: ctx}
	if err := chromedp.Do(ctx); err != nil { // start it
		t.Fatalf("starting %s: %v", path, err)
	}
	failed := map[network.RequestID]string{}
	if err := chromedp.Listen(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			failed[ev.RequestID] = ev.Request.URL
			b.requests = append(b.requests, ev.Request.URL)
		case *network.EventResponseReceived:
			if ev.Response.Status >= 400 {
				b.problems = append(b.problems, fmt.Sprintf("HTTP %d for %s", ev.Response.Status, ev.Response.URL))
			}
		case *network.EventLoadingFailed:
			if !ev.Canceled { // the UI cancels the fetches of a page it leaves
				b.problems = append(b.problems, fmt.Sprintf("request failed: %s: %s %s", failed[ev.RequestID], ev.ErrorText, ev.BlockedReason))
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range ev.Args {
					if a.Value != nil {
						args = append(args, string(a.Value))
					} else {
						args = append(args, a.Description)
					}
				}
				b.problems = append(b.problems, "console."+string(ev.Type)+": "+strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil {
				text += " " + d.Exception.Description
			}
			b.problems = append(b.problems, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, text))
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				b.problems = append(b.problems, fmt.Sprintf("browser log (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	return b
}

// takeProblems returns and forgets the problems seen so far.
func (b *browser) takeProblems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.problems
	b.problems = nil
	return p
}

// takeRequests returns and forgets the URLs requested so far.
func (b *browser) takeRequests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.requests
	b.requests = nil
	return r
}

// do runs actions, failing t on an error.
func (b *browser) do(t testing.TB, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression and decodes its JSON value.
func eval[T any](t testing.TB, b *browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// size sets the window's size.
func (b *browser) size(t testing.TB, v viewport) {
	t.Helper()
	b.do(t, "setting the viewport to "+v.name, chromedp.EmulateViewport(v.width, v.height))
}

// open loads url afresh (a full page load) and waits until the page says
// its data is loaded.
func (b *browser) open(t testing.TB, url string) {
	t.Helper()
	b.do(t, "opening "+url, navigateFresh(url)...)
	b.waitReady(t, url)
}

// navigateFresh loads url as a new page (a fragment-only change would not
// reload it).
func navigateFresh(url string) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{chromedp.Navigate("about:blank"), chromedp.Navigate(url)}
}

// waitReady waits until the page's body says its data is loaded
// (data-state="ready"); a page that says "error" fails t with the text it
// shows.
func (b *browser) waitReady(t testing.TB, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		state := eval[string](t, b, `document.body ? (document.body.dataset.state || "") : ""`)
		switch state {
		case "ready":
			return
		case "error":
			t.Fatalf("%s: the page shows an error: %s (problems: %q)", what,
				eval[string](t, b, `document.body.innerText.slice(0, 2000)`), b.takeProblems())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not ready within 30 s (state %q; problems: %q)", what, state, b.takeProblems())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// navigate follows a link by clicking it, as a user does, and waits until
// the new view is ready.
func (b *browser) click(t testing.TB, selector string) string {
	t.Helper()
	if n := eval[int](t, b, fmt.Sprintf(`document.querySelectorAll(%q).length`, selector)); n == 0 {
		t.Fatalf("no %s on %s", selector, eval[string](t, b, `location.href`))
	}
	href := eval[string](t, b, fmt.Sprintf(`document.querySelector(%q).getAttribute("href")`, selector))
	// The view about to be replaced is marked, so that its "ready" is not
	// taken for the new one's.
	b.do(t, "clicking "+selector,
		chromedp.Evaluate[chromedp.Void](`document.body.dataset.state = "navigating"`),
		chromedp.Click(chromedp.CSS(selector)))
	b.waitReady(t, "after clicking "+selector+" ("+href+")")
	return href
}

// screenshot saves a PNG of the whole page in the artefacts directory and
// returns its path.
func (b *browser) screenshot(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(artifactDir(t, "ui-screenshots"), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// artifactDir is where tests keep what a person may want to look at
// afterwards: $KUBEMON_ARTIFACTS/<sub>, by default _output/<sub> in the
// repository.
func artifactDir(t testing.TB, sub string) string {
	t.Helper()
	base := os.Getenv("KUBEMON_ARTIFACTS")
	if base == "" {
		base = filepath.Join("..", "..", "_output")
	}
	dir, err := filepath.Abs(filepath.Join(base, sub))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// evalJSON evaluates an expression that returns JSON text (a
// JSON.stringify) and returns the text.
func evalJSON(t testing.TB, b *browser, expr string) []byte {
	t.Helper()
	return []byte(eval[string](t, b, expr))
}

// jsonOf decodes v, a JSON document the page produced.
func jsonOf[T any](t testing.TB, raw []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decoding %.200s: %v", raw, err)
	}
	return v
}
