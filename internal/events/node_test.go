package events

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// nodeEvents are events on and off nodes: a kubelet's pod events (source
// host, or reportingInstance in the events.k8s.io style), a scheduler's
// (no node), the Node object's own (from its kubelet, from the node
// controller without a host, and one reported from another host).
func nodeEvents() []*corev1.Event {
	onNode := func(e *corev1.Event, host string) *corev1.Event {
		e.Source.Host = host
		return e
	}
	newStyle := ev("n2-new", "team-a", "web-2", "Started", "Normal", t0.Add(2*time.Minute), 1)
	newStyle.Source = corev1.EventSource{}
	newStyle.ReportingController, newStyle.ReportingInstance = "kubelet", "node-2"
	sched := ev("sched", "team-a", "web-1", "Scheduled", "Normal", t0.Add(3*time.Minute), 1)
	sched.Source = corev1.EventSource{}
	sched.ReportingController, sched.ReportingInstance = "default-scheduler", "default-scheduler-x"
	nodeObj := func(uid, node, host, reason string, at time.Time) *corev1.Event {
		return &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: node + "." + uid, Namespace: "default", UID: types.UID(uid)},
			InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: node, UID: types.UID(node)},
			Reason:         reason, Type: "Normal", LastTimestamp: metav1.NewTime(at),
			Source: corev1.EventSource{Component: "kubelet", Host: host},
		}
	}
	return []*corev1.Event{
		onNode(ev("n1-a", "team-a", "web-0", "Started", "Normal", t0, 1), "node-1"),
		onNode(ev("n1-b", "team-b", "db-0", "BackOff", "Warning", t0.Add(time.Minute), 2), "node-1"),
		newStyle,
		sched,
		nodeObj("node1-ready", "node-1", "node-1", "NodeReady", t0.Add(4*time.Minute)),
		nodeObj("node1-ctl", "node-1", "", "RegisteredNode", t0.Add(5*time.Minute)),
		// About node-2, reported from node-1's host: on both.
		nodeObj("node2-from1", "node-2", "node-1", "Rebooted", t0.Add(6*time.Minute)),
		// A node whose name is a prefix of another's is not that node.
		onNode(ev("n10", "team-a", "web-9", "Started", "Normal", t0.Add(7*time.Minute), 1), "node-10"),
	}
}

func TestQueryNode(t *testing.T) {
	s := open(t, t.TempDir(), Options{Now: (&clock{t0.Add(time.Hour)}).now})
	put(t, s, nodeEvents()...)
	for _, tc := range []struct {
		name string
		q    Query
		want []string // newest first
	}{
		{"a node: its pods' and its own events", Query{Node: "node-1"}, []string{"node2-from1", "node1-ctl", "node1-ready", "n1-b", "n1-a"}},
		{"events.k8s.io reportingInstance, and a Node reported from elsewhere", Query{Node: "node-2"}, []string{"node2-from1", "n2-new"}},
		{"not a prefix of a longer name", Query{Node: "node-10"}, []string{"n10"}},
		{"no such node", Query{Node: "node-3"}, []string{}},
		{"no prefix match", Query{Node: "node"}, []string{}},
		{"with a namespace", Query{Node: "node-1", Namespace: "team-b"}, []string{"n1-b"}},
		{"with a type", Query{Node: "node-1", Type: "Warning"}, []string{"n1-b"}},
		{"with a reason", Query{Node: "node-2", Reason: "Started"}, []string{"n2-new"}},
		{"the Node object only", Query{Node: "node-1", Kind: "Node"}, []string{"node2-from1", "node1-ctl", "node1-ready"}},
		{"kind and name narrow it further", Query{Node: "node-1", Kind: "Node", Name: "node-1"}, []string{"node1-ctl", "node1-ready"}},
		{"a pod not on the node", Query{Node: "node-1", Kind: "Pod", Name: "web-2"}, []string{}},
		{"a pod's UID on its node", Query{Node: "node-2", UID: "pod-team-a-web-2"}, []string{"n2-new"}},
		{"a time range", Query{Node: "node-1", Start: t0.Add(time.Minute), End: t0.Add(5 * time.Minute)}, []string{"node1-ctl", "node1-ready", "n1-b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := uids(t, s, tc.q); !slices.Equal(got, tc.want) {
				t.Errorf("%+v: got %v, want %v", tc.q, got, tc.want)
			}
		})
	}
	// The index is what is walked: the plan for a node is its index.
	if b, _ := (&Query{Node: "node-1", Namespace: "team-b"}).plan(); string(b) != string(bktNode) {
		t.Errorf("node query walks %s", b)
	}
	if b, _ := (&Query{Node: "node-1", Kind: "Pod", Name: "web-0"}).plan(); string(b) != string(bktObject) {
		t.Errorf("node and object query walks %s, want the object's index", b)
	}
	// The limit keeps the newest of the node's.
	r, err := s.Query(context.Background(), Query{Node: "node-1", Limit: 2})
	if err != nil || len(r.Events) != 2 || !r.Truncated || r.Events[0].Event.UID != "node2-from1" {
		t.Errorf("limit 2: %+v %v", r, err)
	}
}

// A newer version of an event that moved (another host) leaves its old
// node's index; deleting events leaves no index entry behind.
func TestNodeIndexFollowsUpdates(t *testing.T) {
	c := &clock{t0.Add(time.Hour)}
	s := open(t, t.TempDir(), Options{Now: c.now, Retention: 2 * time.Hour})
	e := ev("x", "ns", "p", "BackOff", "Warning", t0, 1)
	put(t, s, e)
	moved := ev("x", "ns", "p", "BackOff", "Warning", t0.Add(time.Minute), 2)
	moved.Source.Host = "node-2"
	if n := put(t, s, moved); n != 1 {
		t.Fatalf("update stored %d", n)
	}
	if got := uids(t, s, Query{Node: "node-1"}); len(got) != 0 {
		t.Errorf("node-1 after the move: %v", got)
	}
	if got := uids(t, s, Query{Node: "node-2"}); !slices.Equal(got, []string{"x"}) {
		t.Errorf("node-2 after the move: %v", got)
	}
	c.t = t0.Add(10 * time.Hour)
	if n, err := s.Expire(context.Background()); err != nil || n != 1 {
		t.Fatalf("expire: %d %v", n, err)
	}
	if s.Bytes() != 0 {
		t.Errorf("%d bytes counted after every event expired", s.Bytes())
	}
	_ = s.db.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bktNode).Cursor().First(); k != nil {
			t.Errorf("node index entry %q left", k)
		}
		return nil
	})
}

// downgrade makes dir's store a version 1 file, as a kubemon before the
// node index wrote it: no node bucket, its bytes not counted.
func downgrade(t *testing.T, dir string) {
	t.Helper()
	db, err := bolt.Open(dir+"/"+FileName, 0o640, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		var n int64
		_ = tx.Bucket(bktNode).ForEach(func(k, v []byte) error { n += int64(len(k) + len(v)); return nil })
		if err := tx.DeleteBucket(bktNode); err != nil {
			return err
		}
		meta := tx.Bucket(bktMeta)
		if err := meta.Put(metaBytes, u64(getU64(meta.Get(metaBytes))-uint64(n))); err != nil {
			return err
		}
		return meta.Put(metaVersion, u64(1))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func version(t *testing.T, s *Store) (v uint64) {
	t.Helper()
	_ = s.db.View(func(tx *bolt.Tx) error { v = getU64(tx.Bucket(bktMeta).Get(metaVersion)); return nil })
	return v
}

// A store of layout version 1 (no node index) is upgraded when opened: the
// index is built from its records and counted, nothing else changes; a
// layout this kubemon does not know is refused, never replaced.
func TestUpgradeFromVersion1(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t0.Add(time.Hour)}
	s, err := Open(Options{Dir: dir, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, nodeEvents()...)
	id, seq, bytes, n := s.ID(), s.LastSeq(), s.Bytes(), s.Len()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	downgrade(t, dir)

	s = open(t, dir, Options{Now: c.now})
	if v := version(t, s); v != formatVersion {
		t.Errorf("version %d after the upgrade, want %d", v, formatVersion)
	}
	if s.ID() != id || s.LastSeq() != seq || s.Bytes() != bytes || s.Len() != n {
		t.Errorf("upgraded: id %s seq %d bytes %d len %d; was %s %d %d %d", s.ID(), s.LastSeq(), s.Bytes(), s.Len(), id, seq, bytes, n)
	}
	if got, want := uids(t, s, Query{Node: "node-1"}), []string{"node2-from1", "node1-ctl", "node1-ready", "n1-b", "n1-a"}; !slices.Equal(got, want) {
		t.Errorf("node-1 after the upgrade: %v, want %v", got, want)
	}
	// Writes after the upgrade keep the index.
	put(t, s, ev("late", "ns", "p", "Killing", "Normal", t0.Add(10*time.Minute), 1))
	if got := uids(t, s, Query{Node: "node-1", Limit: 1}); !slices.Equal(got, []string{"late"}) {
		t.Errorf("node-1's newest after a write: %v", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A later layout is refused with the file's path and what to do.
	db, err := bolt.Open(dir+"/"+FileName, 0o640, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bktMeta).Put(metaVersion, u64(formatVersion+1)) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(Options{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "layout version 3") || !strings.Contains(err.Error(), "move the file aside") {
		t.Errorf("a version 3 file: %v", err)
	}
}
