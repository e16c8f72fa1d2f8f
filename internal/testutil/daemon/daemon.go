// Package daemon runs a server process for tests (influxd, Prometheus):
// its output appended to a log file, its exit watched, and it stopped by
// PID, gently or at once. Only tests import it.
package daemon

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Process is a started server process.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// Start starts cmd with its standard output and error appended to the file
// logPath, and watches for its exit.
func Start(cmd *exec.Cmd, logPath string) (*Process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// PID is the process' id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// State is the exit state; nil while it runs.
func (p *Process) State() *os.ProcessState {
	if !p.Exited() {
		return nil
	}
	return p.cmd.ProcessState
}

// Signal sends sig and waits up to wait for the process to exit; it
// reports whether it has.
func (p *Process) Signal(sig syscall.Signal, wait time.Duration) bool {
	if p.Exited() {
		return true
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return true
	case <-time.After(wait):
		return false
	}
}

// Stop ends the process: SIGTERM, then SIGKILL after grace. It returns
// once the process has exited.
func (p *Process) Stop(grace time.Duration) {
	if !p.Signal(syscall.SIGTERM, grace) {
		p.Kill()
	}
}

// Kill ends the process at once (SIGKILL), as a crash would, and waits for
// its exit.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// LogTail returns the last n lines of the file at path ("" if unreadable).
func LogTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
