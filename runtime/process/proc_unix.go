//go:build unix

package process

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// processGroupAttr puts the process in a new process group whose ID is its
// PID, so that it and everything it starts can be signalled together, and
// where the system can (Linux) has it killed when the node dies, so that a
// node killed with SIGKILL leaves no orphan behind.
func processGroupAttr() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true}
	setDeathSignal(attr)
	return attr
}

// terminateGroup sends SIGTERM to p's process group.
func terminateGroup(p *os.Process) { _ = syscall.Kill(-p.Pid, syscall.SIGTERM) }

// killGroup sends SIGKILL to p's process group. Called after p was reaped,
// it kills descendants left behind; the group's ID cannot be reused while
// any of them lives.
func killGroup(p *os.Process) { _ = syscall.Kill(-p.Pid, syscall.SIGKILL) }

// describeExit says how a process ended: "exited with status 1" or
// "was killed by signal 9 (killed)".
func describeExit(s *os.ProcessState) string {
	if ws, ok := s.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("was killed by signal %d (%s)", int(ws.Signal()), ws.Signal())
	}
	return fmt.Sprintf("exited with status %d", s.ExitCode())
}

// checkExecutable reports whether the user wisp runs as may execute path.
func checkExecutable(path string) error {
	const xOK = 1
	if err := syscall.Access(path, xOK); err != nil {
		if errors.Is(err, syscall.EACCES) {
			return fmt.Errorf("not executable by uid %d, which wisp runs as; give an executable it may run", os.Getuid())
		}
		return err
	}
	return nil
}
