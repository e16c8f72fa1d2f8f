package scrape

import (
	"testing"

	"github.com/kubemon/kubemon/internal/model"
)

// TestReleaseEntries: a slice from newEntries has the room asked for and
// holds nothing, also when it is one given back dirty by ReleaseEntries
// (the pool may or may not hand a released slice back: both must hold).
func TestReleaseEntries(t *testing.T) {
	pm := &model.PodMeta{Name: "p"}
	reused := 0
	for i := range 200 {
		n := 1 + i%40
		es := newEntries(n)
		if len(es) != 0 || cap(es) < n {
			t.Fatalf("newEntries(%d): len %d cap %d", n, len(es), cap(es))
		}
		full := es[:cap(es)]
		for j := range full {
			if full[j].Object != (model.Object{}) || full[j].Pod != nil || full[j].Time != 0 {
				t.Fatalf("round %d: entry %d of a new slice holds %+v", i, j, full[j].Object)
			}
		}
		if cap(es) > n {
			reused++
		}
		for j := range n + 3 { // past len, as the pipeline's appends write
			es = append(es, model.Entry{Object: model.Object{Level: model.LevelPod, Node: "n", Pod: "p"}, Time: int64(j + 1), Pod: pm})
		}
		ReleaseEntries(es[:1])
	}
	if reused == 0 {
		t.Log("the pool handed no released slice back in 200 rounds (it may drop them; under -race it drops some on purpose)")
	}
	ReleaseEntries(nil) // nothing to give back
}
