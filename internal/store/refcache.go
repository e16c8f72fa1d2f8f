package store

import (
	"hash/maphash"

	"github.com/prometheus/prometheus/storage"

	"github.com/kubemon/kubemon/internal/model"
)

// objectRefs caches the head references of one object's series, by slot
// (Store.stored: only the metrics stored at the object's level, not the
// whole vocabulary), and when the object was last appended to: one lookup
// per object rather than one per sample.
type objectRefs struct {
	obj  model.Object
	refs []storage.SeriesRef
	seen int64  // Unix seconds
	info uint64 // hash of the info series' labels behind the Info slot
	// next is another object whose hash is the same.
	next *objectRefs
	// dropped is set when the cache forgets the object: a batch's order
	// may still point at it.
	dropped bool
}

// refCache holds the objects' references. An object is found by its
// position first: a node's entries come in the same order at every scrape,
// so the object at an entry's index in the last batch from the same source
// is almost always the entry's, found by one comparison. Only the others
// are hashed, which at a million samples a cycle cost 5 % of kubemon's CPU
// (seven names hashed and compared in a map far larger than the caches).
type refCache struct {
	hash func(*model.Object) uint64
	// byHash holds every object by the hash of its Object; objects whose
	// hashes collide are chained through next.
	byHash map[uint64]*objectRefs
	n      int
	// order holds, by the first object of a batch (a node's batches start
	// with the node), the objects of the last such batch in their order.
	order map[model.Object][]*objectRefs
}

func newRefCache() *refCache {
	seed := maphash.MakeSeed()
	return &refCache{
		hash:   func(o *model.Object) uint64 { return maphash.Comparable(seed, *o) },
		byHash: map[uint64]*objectRefs{},
		order:  map[model.Object][]*objectRefs{},
	}
}

// len is the number of objects cached.
func (c *refCache) len() int { return c.n }

// find returns o's references, nil when none are cached.
func (c *refCache) find(o *model.Object) *objectRefs {
	return c.lookup(c.hash(o), o)
}

func (c *refCache) lookup(h uint64, o *model.Object) *objectRefs {
	for r := c.byHash[h]; r != nil; r = r.next {
		if r.obj == *o {
			return r
		}
	}
	return nil
}

// get returns o's references, a new entry with slots slots when none are
// cached. guess is the object at o's position in the last batch from the
// same source (nil when there is none), taken when it is o.
func (c *refCache) get(o *model.Object, guess *objectRefs, slots int) *objectRefs {
	if guess != nil && !guess.dropped && guess.obj == *o {
		return guess
	}
	h := c.hash(o)
	if r := c.lookup(h, o); r != nil {
		return r
	}
	r := &objectRefs{obj: *o, refs: make([]storage.SeriesRef, slots), next: c.byHash[h]}
	c.byHash[h] = r
	c.n++
	return r
}

// drop forgets r.
func (c *refCache) drop(r *objectRefs) {
	h := c.hash(&r.obj)
	for p := c.byHash[h]; p != nil; p = p.next {
		if p == r {
			break
		}
		if p.next == r {
			p.next = r.next
			r.dropped = true
			c.n--
			return
		}
	}
	if c.byHash[h] != r {
		return // not cached
	}
	if r.next == nil {
		delete(c.byHash, h)
	} else {
		c.byHash[h] = r.next
	}
	r.dropped = true
	c.n--
}

// sweep forgets the objects last appended to before cut (Unix seconds),
// and the orders of batches whose objects are all forgotten.
func (c *refCache) sweep(cut int64) {
	var old []*objectRefs
	for _, r := range c.byHash {
		for ; r != nil; r = r.next {
			if r.seen < cut {
				old = append(old, r)
			}
		}
	}
	for _, r := range old {
		c.drop(r)
	}
	for src, rs := range c.order {
		live := false
		for _, r := range rs {
			if !r.dropped {
				live = true
				break
			}
		}
		if !live {
			delete(c.order, src)
		}
	}
}

// each calls f for every cached object.
func (c *refCache) each(f func(*objectRefs)) {
	for _, r := range c.byHash {
		for ; r != nil; r = r.next {
			f(r)
		}
	}
}
