//go:build race

package backfill

// raceEnabled: the race detector slows the simulator's payloads about
// tenfold, so the tests write coarser histories under it.
const raceEnabled = true
