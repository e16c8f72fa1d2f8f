package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestStable(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		p, err := Stable("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if !(p >= lowest && p < ephemeralStart()) {
			t.Fatalf("port %d outside [%d, %d)", p, lowest, ephemeralStart())
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		l.Close()
		seen[p] = true
	}
	if len(seen) < 2 {
		t.Errorf("20 picks gave %d distinct ports", len(seen))
	}
	if _, err := Stable("192.0.2.1"); err == nil { // TEST-NET-1, not this machine's
		t.Error("an address not on this machine gave a port")
	}
}
