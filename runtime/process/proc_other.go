//go:build !unix

package process

import (
	"fmt"
	"os"
	"syscall"
)

// On systems without process groups only the process itself is signalled,
// and it is killed rather than asked to terminate.

func processGroupAttr() *syscall.SysProcAttr { return nil }

func terminateGroup(p *os.Process) { _ = p.Kill() }

func killGroup(p *os.Process) { _ = p.Kill() }

func describeExit(s *os.ProcessState) string {
	return fmt.Sprintf("exited with status %d", s.ExitCode())
}

func checkExecutable(string) error { return nil }
