// Package leader elects the one node of a cluster that does the
// cluster-wide work (see controller.Options.Leading), with a
// coordination.k8s.io Lease through client-go's leaderelection.
//
// # RATIONALE
//
// Every node is a candidate, as every kube-controller-manager replica is:
// the leader needs nothing a node does not already have (the store's
// watch, and its own pools to see a new Revision start), so a separate
// controller Deployment would add a process without adding a capability.
// A node that loses the Lease keeps serving; it only stops cutting
// Revisions and writing status, and it tries to lead again. The durations
// are client-go's defaults for controllers (15 s lease, 10 s renew
// deadline, 2 s retry): a killed leader is replaced within the lease
// duration plus one retry period; one that stops cleanly releases the
// Lease and is replaced at once.
package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Defaults of Options.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
	// DefaultLeaseName is the Lease the nodes of one cluster share.
	DefaultLeaseName = "wisp-controller"
)

// Options configure an Elector.
type Options struct {
	// Config reaches the apiserver. Required.
	Config *rest.Config
	// Namespace and Name name the Lease; Name defaults to
	// DefaultLeaseName. Namespace is required.
	Namespace, Name string
	// Identity is this node's name in the Lease: unique per process.
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod default to the
	// Default constants.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// OnStart is called each time this node starts leading.
	OnStart func()
	Log     *slog.Logger
}

// Elector runs the election and says whether this node leads.
type Elector struct {
	opts    Options
	log     *slog.Logger
	client  kubernetes.Interface
	leading atomic.Bool
	holder  atomic.Pointer[string]
}

// New checks that the Lease can be read and written, so that a missing
// namespace or an RBAC refusal fails at start with what to do.
func New(ctx context.Context, opts Options) (*Elector, error) {
	if opts.Name == "" {
		opts.Name = DefaultLeaseName
	}
	if opts.Namespace == "" || opts.Identity == "" {
		return nil, errors.New("leader: the Lease namespace and this node's identity are required")
	}
	if opts.LeaseDuration <= 0 {
		opts.LeaseDuration = DefaultLeaseDuration
	}
	if opts.RenewDeadline <= 0 {
		opts.RenewDeadline = DefaultRenewDeadline
	}
	if opts.RetryPeriod <= 0 {
		opts.RetryPeriod = DefaultRetryPeriod
	}
	if opts.RenewDeadline >= opts.LeaseDuration {
		return nil, fmt.Errorf("leader: the renew deadline (%s) must be shorter than the lease duration (%s)", opts.RenewDeadline, opts.LeaseDuration)
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	client, err := kubernetes.NewForConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("leader: Kubernetes client: %w", err)
	}
	e := &Elector{opts: opts, log: opts.Log.With("component", "leader"), client: client}
	if err := e.check(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Elector) check(ctx context.Context) error {
	leases := e.client.CoordinationV1().Leases(e.opts.Namespace)
	_, err := leases.Get(ctx, e.opts.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// Try to create it, so that a refusal shows now.
		_, err = leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: e.opts.Name, Namespace: e.opts.Namespace}}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	}
	var st apierrors.APIStatus
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err):
		return fmt.Errorf("leader: namespace %q does not exist: install wisp with 'kubectl apply -k config/', or pass --lease-namespace", e.opts.Namespace)
	case errors.As(err, &st):
		return fmt.Errorf("leader: Lease %s/%s: %s", e.opts.Namespace, e.opts.Name, st.Status().Message)
	}
	return fmt.Errorf("leader: Lease %s/%s: cannot reach the Kubernetes API at %s: %w", e.opts.Namespace, e.opts.Name, e.opts.Config.Host, err)
}

// Leading says whether this node leads now.
func (e *Elector) Leading() bool { return e.leading.Load() }

// Leader returns the identity of the leader last seen ("" when unknown).
func (e *Elector) Leader() string {
	if h := e.holder.Load(); h != nil {
		return *h
	}
	return ""
}

// Run takes part in the election until ctx ends, leading whenever it
// holds the Lease, and releases the Lease when ctx ends.
func (e *Elector) Run(ctx context.Context) {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: e.opts.Name, Namespace: e.opts.Namespace},
		Client:     e.client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: e.opts.Identity},
	}
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   e.opts.LeaseDuration,
			RenewDeadline:   e.opts.RenewDeadline,
			RetryPeriod:     e.opts.RetryPeriod,
			ReleaseOnCancel: true,
			Name:            e.opts.Name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(context.Context) {
					e.leading.Store(true)
					e.log.Info("leading: this node now cuts revisions and writes status", "identity", e.opts.Identity)
					if e.opts.OnStart != nil {
						e.opts.OnStart()
					}
				},
				OnStoppedLeading: func() {
					if e.leading.Swap(false) {
						e.log.Warn("no longer leading", "identity", e.opts.Identity)
					}
				},
				OnNewLeader: func(id string) {
					e.holder.Store(&id)
					if id != e.opts.Identity {
						e.log.Info("following", "leader", id)
					}
				},
			},
		})
		if err != nil {
			// Only a bad configuration gets here; New checked it.
			e.log.Error("leader election", "error", err)
			return
		}
		le.Run(ctx)
	}
}
