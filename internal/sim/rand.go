package sim

import "math"

// Hash tags keep the pseudo-random streams of different entities apart.
const (
	tagNode uint64 = iota + 1
	tagSlot
	tagCtr
	tagWorkload
	tagWorkloadCtr
	tagPodUID
	tagOwnerUID
	tagContainerID
	tagNameCode
	tagSuffix
	tagImage
	tagVolume
	tagSandbox
	tagIO
	tagSignals
)

// mix64 is the splitmix64 finaliser.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// hash4 deterministically mixes a seed, a tag and three values.
func hash4(seed, tag, a, b, c uint64) uint64 {
	h := mix64(seed ^ (tag * 0xd6e8feb86659fd93))
	h = mix64(h ^ a)
	h = mix64(h ^ (b * 0xff51afd7ed558ccd))
	h = mix64(h ^ (c * 0xc4ceb9fe1a85ec53))
	return h
}

// rng is a tiny deterministic splitmix64 stream. The zero value is usable but
// streams are normally created with newRNG so that each entity has its own.
type rng struct{ s uint64 }

func newRNG(seed, tag, a, b, c uint64) rng { return rng{s: hash4(seed, tag, a, b, c)} }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// float returns a uniform value in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// intn returns a value in [0, n); n must be > 0.
func (r *rng) intn(n int64) int64 { return int64(r.next() % uint64(n)) }

// between returns a uniform integer in [lo, hi].
func (r *rng) between(lo, hi int64) int64 { return lo + r.intn(hi-lo+1) }

// uniform returns a uniform float in [lo, hi).
func (r *rng) uniform(lo, hi float64) float64 { return lo + (hi-lo)*r.float() }

// logUniform returns a log-uniformly distributed float in [lo, hi).
func (r *rng) logUniform(lo, hi float64) float64 { return lo * math.Pow(hi/lo, r.float()) }

// chance returns true with probability p.
func (r *rng) chance(p float64) bool { return r.float() < p }

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func posMod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

func clampI(v, lo, hi int64) int64 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

func since(start, t int64) uint64 {
	if t <= start {
		return 0
	}
	return uint64(t - start)
}

const hexDigits = "0123456789abcdef"

// appendHex appends the 16 lower-case hex digits of v.
func appendHex(b []byte, v uint64, digits int) []byte {
	for i := digits - 1; i >= 0; i-- {
		b = append(b, hexDigits[(v>>(uint(i)*4))&0xf])
	}
	return b
}

// uuidFrom formats two hash words as an RFC 4122 version-4 style UUID.
func uuidFrom(h1, h2 uint64) string {
	h1 = (h1 &^ (0xf << 12)) | (0x4 << 12)       // version 4
	h2 = (h2 &^ (0x3 << 62)) | (uint64(2) << 62) // variant 10xx
	b := make([]byte, 0, 36)
	b = appendHex(b, h1>>32, 8)
	b = append(b, '-')
	b = appendHex(b, (h1>>16)&0xffff, 4)
	b = append(b, '-')
	b = appendHex(b, h1&0xffff, 4)
	b = append(b, '-')
	b = appendHex(b, h2>>48, 4)
	b = append(b, '-')
	b = appendHex(b, h2&0xffffffffffff, 12)
	return string(b)
}

// hex64 returns a 64-hex-digit identifier (container IDs, digests) derived from h.
func hex64(h uint64) string {
	b := make([]byte, 0, 64)
	for i := 0; i < 4; i++ {
		h = mix64(h)
		b = appendHex(b, h, 16)
	}
	return string(b)
}

// nameAlphabet is the alphabet Kubernetes uses for generated name suffixes.
const nameAlphabet = "bcdfghjklmnpqrstvwxz2456789"

// randString returns n characters of nameAlphabet derived from h.
func randString(h uint64, n int) string {
	b := make([]byte, n)
	for i := range b {
		h = mix64(h)
		b[i] = nameAlphabet[h%uint64(len(nameAlphabet))]
	}
	return string(b)
}
