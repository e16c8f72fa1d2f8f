//go:build !race

package backfill

const raceEnabled = false
