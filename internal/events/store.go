package events

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
	corev1 "k8s.io/api/core/v1"
)

// Defaults of Options.
const (
	DefaultRetention = 7 * 24 * time.Hour
	DefaultMaxBytes  = 256 << 20
	// MinMaxBytes is the smallest size cap Open accepts.
	MinMaxBytes = 1 << 20
)

// FileName is the store's file in its directory.
const FileName = "events.db"

// formatVersion is the layout of the file's buckets and keys. Version 2
// added the node index (bktNode); a version 1 file is upgraded when opened
// (the index is built from its records, in one transaction), and a
// kubemon that reads version 1 only refuses a version 2 file with its
// path and what to do.
const formatVersion = 2

// Bucket names. Every event is in bktEvents under its time key
// (time, then UID) and in each index under prefix + time key, so a time
// range of one object, namespace, reason or type is one cursor seek.
var (
	bktMeta      = []byte("meta")
	bktEvents    = []byte("events")       // tkey(t)+uid → protobuf core/v1 Event
	bktUIDs      = []byte("uids")         // uid → tkey(t) + seq(8)
	bktSeq       = []byte("seq")          // seq(8) → received(8) + tkey(t)+uid
	bktObject    = []byte("ix-object")    // lp(kind)+lp(name)+tkey+uid
	bktObjectUID = []byte("ix-objectuid") // lp(involved uid)+tkey+uid
	bktNamespace = []byte("ix-namespace") // lp(namespace)+tkey+uid
	bktReason    = []byte("ix-reason")    // lp(reason)+tkey+uid
	bktType      = []byte("ix-type")      // lp(type)+tkey+uid
	bktNode      = []byte("ix-node")      // lp(node)+tkey+uid, for each of nodesOf(event); since version 2
	allBuckets   = [][]byte{bktMeta, bktEvents, bktUIDs, bktSeq, bktObject, bktObjectUID, bktNamespace, bktReason, bktType, bktNode}

	metaVersion = []byte("version")
	metaID      = []byte("id")
	metaBytes   = []byte("bytes")
	metaCount   = []byte("count")
)

// Options configure a Store.
type Options struct {
	// Dir holds the store's file (FileName); kubemon uses
	// <dataDir>/events. Required.
	Dir string
	// Retention is how long an event is kept after it last happened;
	// default DefaultRetention.
	Retention time.Duration
	// MaxBytes caps the bytes the events take in the store (their records
	// and index entries, keys and values): past it the oldest events are
	// dropped until a tenth of the cap is free again. The file itself can
	// be larger (bbolt's pages are not full, and freed pages are reused,
	// not returned). Default DefaultMaxBytes, at least MinMaxBytes.
	MaxBytes int64
	// Logger and Registerer receive the store's logs and self-metrics;
	// nil discards them.
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Store keeps events in a bbolt file. It is safe for concurrent use.
type Store struct {
	o    Options
	db   *bolt.DB
	path string
	id   string
	m    storeMetrics

	mu    sync.Mutex
	bytes int64 // counted bytes of the stored events (see Options.MaxBytes)
	count int64 // events stored
	seq   uint64
}

type storeMetrics struct {
	added, updated, expired, dropped, rejected prometheus.Counter
	stored, bytes, fileBytes, maxBytes         prometheus.GaugeFunc
}

// Open opens (or creates) the store in o.Dir. An existing file is kept as
// it is: one that cannot be read is an error naming it, never replaced.
func Open(o Options) (*Store, error) {
	if o.Dir == "" {
		return nil, errors.New("events: a directory is required")
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	switch {
	case o.Retention < 0:
		return nil, fmt.Errorf("events: retention %v is negative", o.Retention)
	case o.MaxBytes < MinMaxBytes:
		return nil, fmt.Errorf("events: size cap %d bytes: want at least %d (1 MiB)", o.MaxBytes, MinMaxBytes)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	path := filepath.Join(o.Dir, FileName)
	db, err := bolt.Open(path, 0o640, &bolt.Options{Timeout: 5 * time.Second, FreelistType: bolt.FreelistMapType, NoFreelistSync: true})
	if err != nil {
		return nil, fmt.Errorf("events: opening %s: %w (another kubemon on this data directory holds it, or it is damaged: move it aside to start an empty one)", path, err)
	}
	s := &Store{o: o, db: db, path: path}
	if err := db.Update(s.initialize); err != nil {
		db.Close()
		return nil, fmt.Errorf("events: %s: %w", path, err)
	}
	s.m = s.newMetrics()
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{s.m.added, s.m.updated, s.m.expired, s.m.dropped, s.m.rejected, s.m.stored, s.m.bytes, s.m.fileBytes, s.m.maxBytes} {
			if err := o.Registerer.Register(c); err != nil {
				db.Close()
				return nil, fmt.Errorf("events: %w", err)
			}
		}
	}
	o.Logger.Info("events store open", "path", path, "events", s.count, "bytes", s.bytes, "retention", o.Retention, "maxBytes", o.MaxBytes)
	return s, nil
}

// initialize creates the buckets of a new file, upgrades one of an older
// layout and reads the counters of an existing one.
func (s *Store) initialize(tx *bolt.Tx) error {
	meta := tx.Bucket(bktMeta)
	if meta == nil {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta = tx.Bucket(bktMeta)
		var id [8]byte
		_, _ = rand.Read(id[:])
		if err := meta.Put(metaVersion, u64(formatVersion)); err != nil {
			return err
		}
		if err := meta.Put(metaID, []byte(hex.EncodeToString(id[:]))); err != nil {
			return err
		}
	}
	v := getU64(meta.Get(metaVersion))
	if v == 1 {
		if err := s.upgradeFrom1(tx); err != nil {
			return fmt.Errorf("upgrading layout version 1 to %d: %w", formatVersion, err)
		}
		v = formatVersion
	}
	if v != formatVersion {
		return fmt.Errorf("layout version %d, this kubemon reads %d (and upgrades 1): move the file aside to start an empty store", v, formatVersion)
	}
	for _, b := range allBuckets {
		if tx.Bucket(b) == nil {
			return fmt.Errorf("bucket %q missing: the file is damaged; move it aside to start an empty store", b)
		}
	}
	s.id = string(meta.Get(metaID))
	s.bytes = int64(getU64(meta.Get(metaBytes)))
	s.count = int64(getU64(meta.Get(metaCount)))
	s.seq = tx.Bucket(bktSeq).Sequence()
	return nil
}

// upgradeFrom1 adds the node index to a version 1 file: the bucket, an
// entry for every stored event (counted against the size cap, which the
// next write enforces) and the new version, in initialize's transaction,
// so that an interrupted upgrade leaves the file as it was.
func (s *Store) upgradeFrom1(tx *bolt.Tx) error {
	for _, b := range allBuckets {
		if !bytes.Equal(b, bktNode) && tx.Bucket(b) == nil {
			return fmt.Errorf("bucket %q missing: the file is damaged; move it aside to start an empty store", b)
		}
	}
	if _, err := tx.CreateBucketIfNotExists(bktNode); err != nil {
		return err
	}
	w := s.newTxWriter(tx)
	c := w.events.Cursor()
	n := 0
	for k, v := c.First(); k != nil; k, v = c.Next() {
		w.oldEvent.Reset()
		if err := w.oldEvent.Unmarshal(v); err != nil {
			return fmt.Errorf("record %x: %w", k, err)
		}
		for _, node := range nodesOf(&w.oldEvent) {
			if err := w.set(w.node, append(lp(nil, node), k...), nil); err != nil {
				return err
			}
		}
		n++
	}
	if err := w.commitMeta(); err != nil {
		return err
	}
	s.o.Logger.Info("events store upgraded: node index built", "path", s.path, "events", n, "fromVersion", 1, "toVersion", formatVersion)
	return tx.Bucket(bktMeta).Put(metaVersion, u64(formatVersion))
}

func (s *Store) newMetrics() storeMetrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "kubemon", Subsystem: "events", Name: name, Help: help})
	}
	gauge := func(name, help string, f func() float64) prometheus.GaugeFunc {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "kubemon", Subsystem: "events", Name: name, Help: help}, f)
	}
	locked := func(f func() int64) func() float64 {
		return func() float64 { s.mu.Lock(); defer s.mu.Unlock(); return float64(f()) }
	}
	return storeMetrics{
		added:    counter("added_total", "Events stored for the first time."),
		updated:  counter("updated_total", "Stored events replaced by a newer version of the same event (same UID: its count increased or it changed)."),
		expired:  counter("expired_total", "Events deleted because they last happened longer ago than the retention (--events.retention)."),
		dropped:  counter("dropped_total", "Events deleted, oldest first, to keep the store under its size cap (--events.max-size)."),
		rejected: counter("rejected_total", "Events not stored: without a UID, or larger than 16 KiB even without their labels and annotations."),
		stored:   gauge("stored", "Events in the store.", locked(func() int64 { return s.count })),
		bytes: gauge("store_bytes", "Bytes the stored events take (records and index entries, keys and values), as counted against the size cap.",
			locked(func() int64 { return s.bytes })),
		fileBytes: gauge("store_file_bytes", "Size of the events store's file, in bytes.", func() float64 {
			fi, err := os.Stat(s.path)
			if err != nil {
				return math.NaN()
			}
			return float64(fi.Size())
		}),
		maxBytes: gauge("store_max_bytes", "The events store's size cap, in bytes (--events.max-size).", func() float64 { return float64(s.o.MaxBytes) }),
	}
}

// ID identifies the store's file: a new file has a new ID (sinks' positions
// in an older file's sequence do not apply to it).
func (s *Store) ID() string { return s.id }

// Path is the store's file.
func (s *Store) Path() string { return s.path }

// Len is the number of events stored.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.count)
}

// Bytes is the counted size of the stored events (see Options.MaxBytes).
func (s *Store) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// LastSeq is the sequence number of the newest write (0: none yet).
func (s *Store) LastSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// prepared is an event ready to be written.
type prepared struct {
	ev  *corev1.Event // normalized copy
	uid []byte
	enc []byte
	t   time.Time
}

// prepare copies ev without its managed fields and with its message cut,
// and encodes it; ok is false when it cannot be stored.
func prepare(ev *corev1.Event, received time.Time) (p prepared, ok bool) {
	if ev == nil || ev.UID == "" {
		return p, false
	}
	e := *ev
	e.ManagedFields = nil
	e.Message = cutMessage(e.Message, MaxMessageBytes)
	enc, err := e.Marshal()
	if err != nil {
		return p, false
	}
	if len(enc) > MaxRecordBytes {
		e.Labels, e.Annotations = nil, nil
		if enc, err = e.Marshal(); err != nil || len(enc) > MaxRecordBytes {
			return p, false
		}
	}
	return prepared{ev: &e, uid: []byte(e.UID), enc: enc, t: indexTime(&e, received)}, true
}

// Put stores the events: new UIDs are added, a known UID is replaced unless
// the stored version is newer (it happened later, or as late with a
// higher count), and an unchanged version is left alone (a relist costs no
// writes). Then the oldest events are dropped while the size cap is
// exceeded. It returns how many events were added or replaced. All of them
// are written in one transaction, synced to disk before Put returns.
func (s *Store) Put(ctx context.Context, evs []*corev1.Event) (int, error) {
	if len(evs) == 0 {
		return 0, nil
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	now := s.o.Now()
	ps := make([]prepared, 0, len(evs))
	rejected := 0
	for _, ev := range evs {
		p, ok := prepare(ev, now)
		if !ok {
			rejected++
			continue
		}
		ps = append(ps, p)
	}
	s.m.rejected.Add(float64(rejected))
	if rejected > 0 {
		s.o.Logger.Warn("events not stored: without a UID or too large", "events", rejected)
	}
	if len(ps) == 0 {
		return 0, nil
	}
	var w *txWriter
	err := s.db.Update(func(tx *bolt.Tx) error {
		w = s.newTxWriter(tx)
		for _, p := range ps {
			if err := w.put(p, now); err != nil {
				return err
			}
		}
		if err := w.enforceCap(s.o.MaxBytes); err != nil {
			return err
		}
		return w.commitMeta()
	})
	if err != nil {
		return 0, fmt.Errorf("events: storing %d events: %w", len(ps), err)
	}
	s.applied(w)
	if w.dropped > 0 {
		s.o.Logger.Warn("events store at its size cap: dropped the oldest events", "dropped", w.dropped, "maxBytes", s.o.MaxBytes)
	}
	return w.added + w.updated, nil
}

// applied publishes a committed transaction's counters.
func (s *Store) applied(w *txWriter) {
	s.mu.Lock()
	s.bytes, s.count, s.seq = w.bytes, w.count, w.seq
	s.mu.Unlock()
	s.m.added.Add(float64(w.added))
	s.m.updated.Add(float64(w.updated))
	s.m.dropped.Add(float64(w.dropped))
	s.m.expired.Add(float64(w.expired))
}

// expireBatch is the most events one retention transaction deletes, so
// that a large expiry does not hold the writer for long.
const expireBatch = 2000

// Expire deletes the events that last happened before now − retention and
// returns how many.
func (s *Store) Expire(ctx context.Context) (int, error) {
	cutoff := tkey(s.o.Now().Add(-s.o.Retention))
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		var w *txWriter
		more := false
		err := s.db.Update(func(tx *bolt.Tx) error {
			w = s.newTxWriter(tx)
			c := tx.Bucket(bktEvents).Cursor()
			n := 0
			for k, v := c.First(); k != nil && bytes.Compare(k[:8], cutoff[:]) < 0; k, v = c.First() {
				if n == expireBatch {
					more = true
					break
				}
				if err := w.remove(k, v); err != nil {
					return err
				}
				n++
			}
			w.expired = n
			return w.commitMeta()
		})
		if err != nil {
			return total, fmt.Errorf("events: expiring: %w", err)
		}
		s.applied(w)
		total += w.expired
		if !more {
			return total, nil
		}
	}
}

// Run expires events every minute (or a tenth of the retention, if
// shorter) until ctx ends.
func (s *Store) Run(ctx context.Context) error {
	every := max(time.Second, min(time.Minute, s.o.Retention/10))
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := s.Expire(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			s.o.Logger.Error("events retention", "err", err)
		case n > 0:
			s.o.Logger.Debug("events expired", "events", n, "retention", s.o.Retention)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// txWriter changes the buckets in one write transaction and keeps the
// counters (bytes, count) in step.
type txWriter struct {
	tx                                            *bolt.Tx
	events, uids, seqs                            *bolt.Bucket
	object, objectUID, namespace, why, kind, node *bolt.Bucket

	bytes, count                     int64
	seq                              uint64
	added, updated, expired, dropped int
	oldEvent                         corev1.Event
}

func (s *Store) newTxWriter(tx *bolt.Tx) *txWriter {
	meta := tx.Bucket(bktMeta)
	return &txWriter{
		tx: tx, events: tx.Bucket(bktEvents), uids: tx.Bucket(bktUIDs), seqs: tx.Bucket(bktSeq),
		object: tx.Bucket(bktObject), objectUID: tx.Bucket(bktObjectUID), namespace: tx.Bucket(bktNamespace),
		why: tx.Bucket(bktReason), kind: tx.Bucket(bktType), node: tx.Bucket(bktNode),
		bytes: int64(getU64(meta.Get(metaBytes))), count: int64(getU64(meta.Get(metaCount))),
		seq: tx.Bucket(bktSeq).Sequence(),
	}
}

func (w *txWriter) commitMeta() error {
	meta := w.tx.Bucket(bktMeta)
	if err := meta.Put(metaBytes, u64(uint64(max(w.bytes, 0)))); err != nil {
		return err
	}
	return meta.Put(metaCount, u64(uint64(max(w.count, 0))))
}

func (w *txWriter) set(b *bolt.Bucket, k, v []byte) error {
	if old := b.Get(k); old != nil {
		w.bytes -= int64(len(k) + len(old))
	}
	w.bytes += int64(len(k) + len(v))
	return b.Put(k, v)
}

func (w *txWriter) del(b *bolt.Bucket, k []byte) error {
	if old := b.Get(k); old != nil {
		w.bytes -= int64(len(k) + len(old))
	}
	return b.Delete(k)
}

// indexEntry is one index entry of an event: its bucket and key prefix
// (the key is the prefix + the event's key).
type indexEntry struct {
	b      *bolt.Bucket
	prefix []byte
}

// indexKeys lists ev's index entries: one in each of the object, object
// UID, namespace, reason and type indexes, and one in the node index for
// each of nodesOf(ev) (none, one or two).
func (w *txWriter) indexKeys(ev *corev1.Event) []indexEntry {
	o := ev.InvolvedObject
	out := append(make([]indexEntry, 0, 7),
		indexEntry{w.object, lp(lp(nil, o.Kind), o.Name)},
		indexEntry{w.objectUID, lp(nil, string(o.UID))},
		indexEntry{w.namespace, lp(nil, ev.Namespace)},
		indexEntry{w.why, lp(nil, ev.Reason)},
		indexEntry{w.kind, lp(nil, ev.Type)},
	)
	for _, n := range nodesOf(ev) {
		out = append(out, indexEntry{w.node, lp(nil, n)})
	}
	return out
}

// put writes one prepared event (see Store.Put).
func (w *txWriter) put(p prepared, received time.Time) error {
	tk := tkey(p.t)
	replaced := false
	if old := w.uids.Get(p.uid); old != nil {
		if len(old) != 16 {
			return fmt.Errorf("uid %s: damaged entry", p.uid)
		}
		oldKey := append(append([]byte(nil), old[:8]...), p.uid...)
		if oldRec := w.events.Get(oldKey); oldRec != nil {
			w.oldEvent.Reset()
			if err := w.oldEvent.Unmarshal(oldRec); err == nil {
				c := bytes.Compare(tk[:], oldKey[:8])
				if c < 0 || (c == 0 && Count(p.ev) < Count(&w.oldEvent)) || bytes.Equal(oldRec, p.enc) {
					return nil // what is stored is as new or newer
				}
			}
			if err := w.remove(oldKey, oldRec); err != nil {
				return err
			}
			replaced = true
		} else if err := w.del(w.uids, p.uid); err != nil { // an entry without its record
			return err
		}
	}
	if replaced {
		w.updated++
	} else {
		w.added++
	}
	key := append(tk[:], p.uid...)
	if err := w.set(w.events, key, p.enc); err != nil {
		return err
	}
	for _, ix := range w.indexKeys(p.ev) {
		if err := w.set(ix.b, append(ix.prefix, key...), nil); err != nil {
			return err
		}
	}
	seq, err := w.seqs.NextSequence()
	if err != nil {
		return err
	}
	w.seq = seq
	rk := tkey(received)
	if err := w.set(w.seqs, u64(seq), append(rk[:], key...)); err != nil {
		return err
	}
	if err := w.set(w.uids, p.uid, append(tk[:], u64(seq)...)); err != nil {
		return err
	}
	w.count++
	return nil
}

// remove deletes the event stored under key (record rec) and every entry
// that points to it. Keys and values of bolt are only valid in the
// transaction and until it changes them: they are copied first.
func (w *txWriter) remove(key, rec []byte) error {
	key = append([]byte(nil), key...)
	w.oldEvent.Reset()
	if err := w.oldEvent.Unmarshal(rec); err != nil {
		return fmt.Errorf("record %x: %w", key, err)
	}
	for _, ix := range w.indexKeys(&w.oldEvent) {
		if err := w.del(ix.b, append(ix.prefix, key...)); err != nil {
			return err
		}
	}
	uid := key[8:]
	if u := w.uids.Get(uid); len(u) == 16 && bytes.Equal(u[:8], key[:8]) {
		if err := w.del(w.seqs, append([]byte(nil), u[8:]...)); err != nil {
			return err
		}
		if err := w.del(w.uids, uid); err != nil {
			return err
		}
	}
	if err := w.del(w.events, key); err != nil {
		return err
	}
	w.count--
	return nil
}

// enforceCap drops the oldest events while the counted bytes exceed
// maxBytes, down to nine tenths of it.
func (w *txWriter) enforceCap(maxBytes int64) error {
	if w.bytes <= maxBytes {
		return nil
	}
	target := maxBytes - maxBytes/10
	c := w.events.Cursor()
	for k, v := c.First(); k != nil && w.bytes > target; k, v = c.First() {
		if err := w.remove(k, v); err != nil {
			return err
		}
		w.dropped++
	}
	return nil
}

// Logged is one write of the store's sequence: an event as it was stored.
type Logged struct {
	// Seq is the write's sequence number (increasing; a replaced event
	// gets a new one and its old one is gone).
	Seq uint64
	// Received is when kubemon stored it.
	Received time.Time
	// Time is when the event last happened, as filed (see Time).
	Time  time.Time
	Event *corev1.Event
}

// After returns up to n writes with a sequence number above seq, oldest
// first. Writes of events deleted since (retention, size cap) or replaced
// by a newer version are not in the sequence any more.
func (s *Store) After(ctx context.Context, seq uint64, n int) ([]Logged, error) {
	var out []Logged
	err := s.db.View(func(tx *bolt.Tx) error {
		events := tx.Bucket(bktEvents)
		c := tx.Bucket(bktSeq).Cursor()
		for k, v := c.Seek(u64(seq + 1)); k != nil && len(out) < n; k, v = c.Next() {
			if len(out)%256 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if len(v) <= 16 {
				continue
			}
			rec := events.Get(v[8:])
			if rec == nil {
				continue
			}
			ev := new(corev1.Event)
			if err := ev.Unmarshal(rec); err != nil {
				return fmt.Errorf("record %x: %w", v[8:], err)
			}
			out = append(out, Logged{Seq: getU64(k), Received: keyTime(v[:8]), Time: keyTime(v[8:16]), Event: ev})
		}
		return nil
	})
	return out, err
}

// Oldest is when the oldest stored event happened; ok is false when the
// store is empty.
func (s *Store) Oldest() (t time.Time, ok bool) {
	_ = s.db.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bktEvents).Cursor().First(); k != nil {
			t, ok = keyTime(k), true
		}
		return nil
	})
	return t, ok
}

// Time keys: nanoseconds since 1970 with the sign bit flipped, big-endian,
// so that byte order is time order. Times outside what int64 nanoseconds
// hold are clamped.
var (
	minKeyTime = time.Unix(0, math.MinInt64)
	maxKeyTime = time.Unix(0, math.MaxInt64)
)

func tkey(t time.Time) (k [8]byte) {
	switch {
	case t.Before(minKeyTime):
		t = minKeyTime
	case t.After(maxKeyTime):
		t = maxKeyTime
	}
	binary.BigEndian.PutUint64(k[:], uint64(t.UnixNano())^(1<<63))
	return k
}

func keyTime(k []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(k[:8])^(1<<63))).UTC()
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func getU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// lp appends s, length-prefixed (uvarint), to dst: a sequence of such
// strings is a prefix of no other sequence, so index prefixes never
// overlap ("a","bc" and "ab","c" differ).
func lp(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}
