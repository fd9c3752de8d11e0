package process

import "github.com/wisp-faas/wisp/api"

// Launcher makes a Provider run something other than spec.process while
// keeping everything else it does: the free port, the environment
// contract, readiness probing, the reverse proxy, restarts with backoff,
// graceful Stop, output capture and the parent-death signal. The
// container runtime (runtime/container) is one: its program is
// `runc run` in the foreground, which forwards signals to the container.
//
// With a Launcher, Prepare checks nothing (the Launcher's owner prepares
// the Revision's source) and Start accepts any Revision.
type Launcher interface {
	// Describe names what runs for rev, for error messages: Start's
	// errors read "revision <name>: <Describe(rev)>: <why>".
	Describe(rev *api.Revision) string

	// Command returns the program to start for one process of the
	// instance instanceID of rev. The program must serve HTTP on
	// 127.0.0.1:port. env is what the function must see: the Revision's
	// env, then PORT, K_SERVICE, K_CONFIGURATION and K_REVISION, each
	// overriding an earlier one; the node's own variables are not in it.
	// Command is called for every start, restarts included, from any
	// goroutine. An error fails that start.
	Command(rev *api.Revision, instanceID string, port int, env []string) (*Cmd, error)
}

// Cmd is a program that a Launcher has the Provider run.
type Cmd struct {
	// Path is the executable; Args are its arguments, Args[0] included.
	Path string
	Args []string

	// Dir is the program's working directory; empty means the node's.
	Dir string

	// Env is the program's own environment; nil means the node's PATH,
	// HOME, LANG and TZ. A Launcher that passes the function's
	// environment some other way (a container's config) leaves it nil.
	Env []string

	// ReadinessPath is the HTTP path probed until it answers with a
	// status below 500. Empty means a TCP probe: the instance is ready as
	// soon as the port accepts a connection, Knative's default for a
	// container without a readinessProbe.
	ReadinessPath string

	// Cleanup, when not nil, is called once after the program ended:
	// after it was reaped and its process group killed, before its output
	// is drained and before any restart. It is also called when the
	// program could not be started. It should end whatever the program
	// left behind outside its process group.
	Cleanup func()
}
