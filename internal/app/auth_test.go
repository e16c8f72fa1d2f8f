package app

import (
	"net"
	"strings"
	"testing"

	"github.com/kubemon/kubemon/internal/config"
)

func TestAuthMode(t *testing.T) {
	loop := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	loop6 := &net.TCPAddr{IP: net.IPv6loopback, Port: 8080}
	all := &net.TCPAddr{IP: net.IPv6zero, Port: 8080}
	pod := &net.TCPAddr{IP: net.IPv4(10, 244, 0, 5), Port: 8080}
	for _, tt := range []struct {
		auth     string
		addr     net.Addr
		haveKube bool
		want     string
		err      string
	}{
		{config.AuthAuto, loop, false, config.AuthNone, ""},
		{config.AuthAuto, loop6, true, config.AuthNone, ""},
		{config.AuthAuto, all, true, config.AuthKubernetes, ""},
		{config.AuthAuto, pod, true, config.AuthKubernetes, ""},
		{config.AuthAuto, all, false, "", "--auth=none"},
		{config.AuthKubernetes, loop, true, config.AuthKubernetes, ""},
		{config.AuthKubernetes, all, false, "", "needs the Kubernetes API"},
		{config.AuthNone, all, false, config.AuthNone, ""},
	} {
		c := config.Default()
		c.Auth = tt.auth
		got, err := authMode(c, tt.addr, tt.haveKube)
		if got != tt.want || (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("authMode(%s, %s, kube=%v) = %q, %v; want %q, error with %q", tt.auth, tt.addr, tt.haveKube, got, err, tt.want, tt.err)
		}
	}
}
