// Package freeport picks free TCP ports for test servers that are stopped
// and started again on the same port (an outage, a restart). A port the
// kernel hands out for ":0" comes from its ephemeral range, which is also
// where outgoing connections take their local ports: while the server is
// down, one of them can take its port, and the restart fails with "address
// already in use" (seen in CI: influxd in TestSinkOutage). The ports here
// lie below that range. Only tests import it.
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// lowest is the first port considered.
const lowest = 10000

// Stable returns a port free on host (an IP address) below the kernel's
// ephemeral port range (net.ipv4.ip_local_port_range; 32768 when it cannot
// be read).
func Stable(host string) (int, error) {
	hi := ephemeralStart()
	if hi <= lowest+100 {
		return 0, fmt.Errorf("freeport: the ephemeral range starts at %d: no room below it", hi)
	}
	var last error
	for range 200 {
		p := lowest + rand.IntN(hi-lowest)
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			last = err
			continue
		}
		l.Close()
		return p, nil
	}
	return 0, errors.Join(errors.New("freeport: no free port found below the ephemeral range"), last)
}

// ephemeralStart is the first port of the kernel's ephemeral range.
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 0 {
		return 32768
	}
	return n
}

// Addr is host:port with a Stable port on host; it fails t when there is
// none.
func Addr(t testing.TB, host string) string {
	t.Helper()
	p, err := Stable(host)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort(host, strconv.Itoa(p))
}
