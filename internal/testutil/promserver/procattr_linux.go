package promserver

import "syscall"

// procAttr has Prometheus killed with the test binary, should that die
// without running its cleanups.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
