package runtime

import (
	"context"
	"net/http"

	"github.com/wisp-faas/wisp/api"
)

// Provider starts instances of the Revisions whose source it understands.
// A Provider is safe for concurrent use.
type Provider interface {
	// Prepare makes a Revision startable: it resolves and validates the
	// source (an executable exists and is executable, a module compiles).
	// It is called once per Revision before the first Start, and again
	// after a node restart. The error says why the Revision cannot run.
	Prepare(ctx context.Context, rev *api.Revision) error

	// Start starts one instance and returns when it is ready to serve, or
	// with an error that says why it never became ready. notify, which
	// may be nil, is called whenever the instance's state changes after
	// Start returned (it crashed and is restarting, it is ready again, it
	// is gone); it must not block.
	Start(ctx context.Context, rev *api.Revision, notify func(State)) (Instance, error)

	// Release forgets a Revision that will never be started again,
	// freeing what Prepare kept for it. Running instances are stopped by
	// their owner before Release is called.
	Release(rev *api.Revision)
}

// Instance is one running copy of a Revision: the unit the autoscaler
// counts. ServeHTTP serves one request on it.
type Instance interface {
	http.Handler

	// ID is unique among the instances of one Provider.
	ID() string

	// Ready reports whether the instance can take a request now.
	Ready() bool

	// Stop stops taking new requests, lets the ones in flight finish
	// until ctx is done, then ends the instance. It is safe to call more
	// than once.
	Stop(ctx context.Context) error

	// Done is closed once the instance has ended for good.
	Done() <-chan struct{}
}

// State is what an Instance reports about itself through notify.
type State struct {
	// Ready is true when the instance takes requests.
	Ready bool
	// Gone is true when the instance has ended and will not come back.
	Gone bool
	// Restarts counts how often the instance was restarted after a crash.
	Restarts int
	// Reason says why the instance is not ready, for status messages
	// ("exited with status 1: <last stderr line>; restarting in 2s").
	Reason string
}
