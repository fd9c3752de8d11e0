package process

import "syscall"

// setDeathSignal asks Linux to SIGKILL the process when the node dies.
// The signal follows the thread that started the process; Go keeps its
// threads for the life of the process, so in practice this is the node.
func setDeathSignal(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGKILL }
