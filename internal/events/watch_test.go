package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// fakeAPI answers the watcher's lists from pages and its watches with
// watchers the test drives; it records the requests.
type fakeAPI struct {
	mu       sync.Mutex
	pages    [][]corev1.Event // one list's pages
	listRV   string
	lists    []metav1.ListOptions
	watches  []metav1.ListOptions
	watchers chan *watch.FakeWatcher
	listErr  error
}

func (f *fakeAPI) client() *fake.Clientset {
	cs := fake.NewClientset()
	cs.PrependReactor("list", "events", func(a k8stesting.Action) (bool, runtime.Object, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		o := a.(k8stesting.ListActionImpl).ListOptions
		f.lists = append(f.lists, o)
		if f.listErr != nil {
			return true, nil, f.listErr
		}
		page := 0
		if o.Continue != "" {
			_, _ = fmt.Sscanf(o.Continue, "page-%d", &page)
		}
		l := &corev1.EventList{ListMeta: metav1.ListMeta{ResourceVersion: f.listRV}}
		if page < len(f.pages) {
			l.Items = f.pages[page]
		}
		if page+1 < len(f.pages) {
			l.Continue = fmt.Sprintf("page-%d", page+1)
		}
		return true, l, nil
	})
	cs.PrependWatchReactor("events", func(a k8stesting.Action) (bool, watch.Interface, error) {
		f.mu.Lock()
		f.watches = append(f.watches, a.(k8stesting.WatchActionImpl).ListOptions)
		f.mu.Unlock()
		w := watch.NewFakeWithChanSize(10, false)
		f.watchers <- w
		return true, w, nil
	})
	return cs
}

func (f *fakeAPI) requests() (lists, watches []metav1.ListOptions) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.lists), slices.Clone(f.watches)
}

func waitUntil(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func withRV(e *corev1.Event, rv string) *corev1.Event { e.ResourceVersion = rv; return e }

func TestWatcherListsWatchesResumesAndRelists(t *testing.T) {
	c := &clock{t0.Add(time.Hour)}
	s := open(t, t.TempDir(), Options{Now: c.now})
	api := &fakeAPI{
		pages: [][]corev1.Event{
			{*ev("a", "ns", "p", "Scheduled", "Normal", t0, 1), *ev("b", "ns", "p", "Pulled", "Normal", t0, 1)},
			{*ev("c", "ns", "p", "Created", "Normal", t0, 1)},
		},
		listRV:   "100",
		watchers: make(chan *watch.FakeWatcher, 4),
	}
	w, err := NewWatcher(WatchOptions{Client: api.client(), Store: s, PageSize: 2, MinBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	// The list, page by page, then a watch from the list's version.
	fw := <-api.watchers
	if s.Len() != 3 {
		t.Fatalf("after the list: %d events stored, want 3", s.Len())
	}
	lists, watches := api.requests()
	if len(lists) != 2 || lists[0].Limit != 2 || lists[1].Continue != "page-1" {
		t.Fatalf("list requests %+v", lists)
	}
	if len(watches) != 1 || watches[0].ResourceVersion != "100" || !watches[0].AllowWatchBookmarks || watches[0].TimeoutSeconds == nil {
		t.Fatalf("watch requests %+v", watches)
	}

	// Added and modified events are stored; a bookmark moves the version.
	fw.Add(withRV(ev("d", "ns", "p", "Started", "Normal", t0.Add(time.Second), 1), "101"))
	fw.Modify(withRV(ev("a", "ns", "p", "Scheduled", "Normal", t0.Add(time.Minute), 2), "102"))
	fw.Action(watch.Bookmark, &corev1.Event{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "105"}})
	waitUntil(t, "d stored and a updated", func() bool {
		r, _ := s.Query(context.Background(), Query{UID: "pod-ns-p", Limit: 10})
		return len(r.Events) == 4 && r.Events[0].Event.UID == "a" && r.Events[0].Event.Count == 2
	})
	// A deleted event (its TTL in the API) stays stored.
	fw.Delete(withRV(ev("b", "ns", "p", "Pulled", "Normal", t0, 1), "106"))
	// The server ends the watch: the next one resumes where it was.
	fw.Stop()
	fw = <-api.watchers
	if _, watches := api.requests(); watches[1].ResourceVersion != "106" {
		t.Fatalf("resumed at %q, want 106", watches[1].ResourceVersion)
	}
	if s.Len() != 4 {
		t.Errorf("%d events after a deletion in the API, want 4", s.Len())
	}

	// 410 Gone: list again (what is stored stays), then watch from the new list.
	api.mu.Lock()
	api.listRV = "200"
	api.pages = [][]corev1.Event{{*ev("e", "ns", "q", "Killing", "Normal", t0.Add(2*time.Minute), 1)}}
	api.mu.Unlock()
	gone := apierrors.NewResourceExpired("too old resource version: 106 (150)")
	fw.Error(&gone.ErrStatus)
	fw = <-api.watchers
	lists, watches = api.requests()
	if len(lists) != 3 || lists[2].Continue != "" || watches[2].ResourceVersion != "200" {
		t.Fatalf("after 410: lists %+v, watches %+v", lists, watches)
	}
	if s.Len() != 5 {
		t.Errorf("%d events after the relist, want 5", s.Len())
	}

	// Another watch error: watch again from the same version, after a backoff.
	fw.Error(&apierrors.NewInternalError(errors.New("etcd hiccup")).ErrStatus)
	<-api.watchers
	if _, watches := api.requests(); len(watches) != 4 || watches[3].ResourceVersion != "200" {
		t.Fatalf("after an error: watches %+v", watches)
	}
}

// RBAC refusing the list is retried, not fatal.
func TestWatcherForbiddenRetries(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	api := &fakeAPI{watchers: make(chan *watch.FakeWatcher, 1),
		listErr: apierrors.NewForbidden(schema.GroupResource{Resource: "events"}, "", errors.New("RBAC: no"))}
	w, err := NewWatcher(WatchOptions{Client: api.client(), Store: s, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	waitUntil(t, "three list attempts", func() bool { l, _ := api.requests(); return len(l) >= 3 })
	api.mu.Lock()
	api.listErr = nil
	api.listRV = "7"
	api.mu.Unlock()
	<-api.watchers
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
