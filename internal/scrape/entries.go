package scrape

import (
	"sync"

	"github.com/kubemon/kubemon/internal/model"
)

// entryBufs recycles the entry slices the decoders return (an Entry is
// over half a kilobyte: a node of 30 pods × 2 containers takes about 50
// KB a scrape, and at thousands of nodes the allocations would drive the
// garbage collector). ReleaseEntries gives a slice back.
var entryBufs sync.Pool // *[]model.Entry

// newEntries returns an empty slice with room for n entries, recycled
// when one large enough was released.
func newEntries(n int) []model.Entry {
	if p, ok := entryBufs.Get().(*[]model.Entry); ok {
		if cap(*p) >= n {
			return (*p)[:0]
		}
	}
	return make([]model.Entry, 0, n)
}

// ReleaseEntries gives a scrape's entries (NodeStats.Entries) back for
// the next scrapes to reuse. Call it when nothing holds the slice, or any
// entry in it, any more: after the handler has returned, when the handler
// keeps no entry (pipeline.Collector copies what it keeps). The entries
// are cleared, so that the pool keeps no strings or pod metadata alive.
func ReleaseEntries(es []model.Entry) {
	if cap(es) == 0 {
		return
	}
	es = es[:cap(es)]
	clear(es)
	es = es[:0]
	entryBufs.Put(&es)
}
