package sim

import (
	"strconv"
	"strings"
)

// Pod name suffixes are 5 characters of nameAlphabet (27^5 values). They encode
// (global slot, generation mod G) through an affine bijection, so that pods
// that exist at the same time never share a suffix and a name can be decoded
// back to its slot (used by Restart).
const suffixSpace = 27 * 27 * 27 * 27 * 27 // 14,348,907 = 3^15

type suffixCodec struct {
	g    int64 // generations distinguished per slot
	a, b int64 // x -> (a·x + b) mod suffixSpace; a coprime to 3
	aInv int64
}

func newSuffixCodec(seed uint64, totalSlots int64) suffixCodec {
	g := suffixSpace / max(totalSlots, 1)
	g = clampI(g, 1, 1000)
	h := hash4(seed, tagSuffix, 0, 0, 0)
	a := int64(h%(suffixSpace-2)) + 2
	if a%3 == 0 {
		a++
	}
	b := int64((h >> 32) % suffixSpace)
	return suffixCodec{g: g, a: a, b: b, aInv: modInverse(a, suffixSpace)}
}

func modInverse(a, m int64) int64 {
	t, newT := int64(0), int64(1)
	r, newR := m, a
	for newR != 0 {
		q := r / newR
		t, newT = newT, t-q*newT
		r, newR = newR, r-q*newR
	}
	if t < 0 {
		t += m
	}
	return t
}

func (sc *suffixCodec) encode(globalSlot uint64, gen int64) string {
	x := int64(globalSlot)*sc.g + posMod(gen, sc.g)
	y := (sc.a*x + sc.b) % suffixSpace
	var buf [5]byte
	for i := 4; i >= 0; i-- {
		buf[i] = nameAlphabet[y%27]
		y /= 27
	}
	return string(buf[:])
}

// decode returns the global slot encoded in a 5-character suffix.
func (sc *suffixCodec) decode(s string) (uint64, bool) {
	if len(s) != 5 {
		return 0, false
	}
	var y int64
	for i := 0; i < 5; i++ {
		d := strings.IndexByte(nameAlphabet, s[i])
		if d < 0 {
			return 0, false
		}
		y = y*27 + int64(d)
	}
	x := (sc.aInv * posMod(y-sc.b, suffixSpace)) % suffixSpace
	return uint64(x / sc.g), true
}

// podName returns the name of the pod of workload wl in global slot gs,
// generation gen, started at start (Unix seconds).
func (c *Cluster) podName(wl *workload, gs uint64, gen, start int64) string {
	switch wl.kind {
	case kindDeployment:
		return wl.name + "-" + wl.hash + "-" + c.codec.encode(gs, gen)
	case kindStatefulSet:
		return wl.name + "-" + strconv.FormatUint(gs, 10)
	case kindJob:
		return jobName(wl, start) + "-" + c.codec.encode(gs, gen)
	default:
		return wl.name + "-" + c.codec.encode(gs, gen)
	}
}

// jobName is the CronJob-style name of the Job owning a pod started at start.
func jobName(wl *workload, start int64) string {
	return wl.name + "-" + strconv.FormatInt(start/60, 10)
}

// candidateSlots returns the global slots a pod name may belong to.
func (c *Cluster) candidateSlots(pod string) []uint64 {
	i := strings.LastIndexByte(pod, '-')
	if i < 0 {
		return nil
	}
	tail := pod[i+1:]
	var out []uint64
	if gs, ok := c.codec.decode(tail); ok {
		out = append(out, gs)
	}
	if v, err := strconv.ParseUint(tail, 10, 64); err == nil {
		out = append(out, v)
	}
	return out
}
