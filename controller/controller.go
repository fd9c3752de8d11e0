package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"knative.dev/pkg/apis"

	"github.com/wisp-faas/wisp/activator"
	"github.com/wisp-faas/wisp/activator/filter"
	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/autoscaler"
	"github.com/wisp-faas/wisp/controller/store"
	"github.com/wisp-faas/wisp/runtime"
)

// Providers are the instance providers of a node, one per kind of source;
// a nil one means the node cannot run that kind.
type Providers struct {
	Process   runtime.Provider
	Wasm      runtime.Provider
	Container runtime.Provider
}

// For returns the provider for a Revision's source, or an error that
// says why the node cannot run it.
func (p Providers) For(rev *api.Revision) (runtime.Provider, error) {
	s := &rev.Spec
	switch {
	case s.Process != nil && p.Process != nil:
		return p.Process, nil
	case s.Wasm != nil && p.Wasm != nil:
		return p.Wasm, nil
	case s.Container != nil && p.Container != nil:
		return p.Container, nil
	case s.Container != nil:
		return nil, fmt.Errorf("this node cannot run container images (%s); deploy the server as a process with --exec, or as a Wasm module with --wasm", s.Container.Image)
	case s.Wasm != nil:
		return nil, errors.New("this node has no WebAssembly runtime")
	case s.Process != nil:
		return nil, errors.New("this node does not run processes")
	}
	return nil, errors.New("the revision has no source")
}

// pinRetry is how long the controller waits before trying again to pin a
// new revision's source (a registry that did not answer).
const pinRetry = 5 * time.Second

// Options configure a Controller.
type Options struct {
	Store      store.Store
	Routes     *activator.Routes
	Pools      *activator.Pools
	Providers  Providers
	Domain     string
	GatewayURL string
	Log        *slog.Logger
	// Workers is the number of functions reconciled at once; default 4.
	Workers int
	// StopWait bounds how long a scaled-down instance may drain; default 30s.
	StopWait time.Duration
	// Pin, when set, is called on every new Revision before it is stored,
	// to pin what its source names (an OCI tag) to an immutable digest.
	Pin func(ctx context.Context, rev *api.Revision) error
	// Registry receives the scaling metrics; nil means none are exported.
	Registry prometheus.Registerer
	// Autoscaler is the autoscaling configuration (config/autoscaler.yaml);
	// the zero value means Knative's defaults.
	Autoscaler *autoscaler.Config
	// OnDelete, when set, is called once a deleted Function's revisions
	// and route are gone, to drop what other parts keep for it.
	OnDelete func(namespace, function string)
	// GlobalFilters run on every Function's requests (the node's
	// gateway configuration).
	GlobalFilters []api.GatewayFilter
	// ExtraFilters, when set, adds the filters from elsewhere that apply
	// to a Function (Filter resources).
	ExtraFilters ExtraFilters
	// RetainRevisions is how many unrouted Revisions of a Function are
	// kept; 0 means DefaultRetainRevisions, negative keeps all.
	RetainRevisions int
	// Leading says whether this controller does the cluster-wide work:
	// cutting Revisions, collecting unrouted ones, deleting a deleted
	// Function's Revisions, and writing status. nil means always (one
	// node). Every controller does the node-local work (routes, pools,
	// chains, scaling) whether it leads or not; call ResyncAll when it
	// starts leading.
	Leading func() bool
}

// Controller reconciles Functions and Revisions. See the package doc.
type Controller struct {
	opts        Options
	log         *slog.Logger
	functions   *store.Typed[api.Function, *api.Function]
	revisions   *store.Typed[api.Revision, *api.Revision]
	queue       *queue
	scaling     *scaling
	gatewayPort string
	synced      atomic.Bool

	mu     sync.Mutex
	fns    map[string]*api.Function // by namespace/name, as last seen
	revs   map[string]*api.Revision
	chains map[string]builtChain // by namespace/name of the Function
}

// New returns a controller; Run starts it.
func New(opts Options) (*Controller, error) {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.StopWait <= 0 {
		opts.StopWait = 30 * time.Second
	}
	u, err := url.Parse(opts.GatewayURL)
	if err != nil {
		return nil, fmt.Errorf("controller: gateway URL %q: %w", opts.GatewayURL, err)
	}
	port := u.Port()
	if port == "80" {
		port = ""
	}
	cfg := autoscaler.DefaultConfig()
	if opts.Autoscaler != nil {
		cfg = *opts.Autoscaler
	}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, err
	}
	q := newQueue()
	return &Controller{
		scaling:     newScaling(cfg, opts.Log, m, q.Add),
		opts:        opts,
		log:         opts.Log.With("component", "controller"),
		functions:   store.NewTyped[api.Function](opts.Store, store.Functions),
		revisions:   store.NewTyped[api.Revision](opts.Store, store.Revisions),
		queue:       q,
		gatewayPort: port,
		fns:         map[string]*api.Function{},
		revs:        map[string]*api.Revision{},
		chains:      map[string]builtChain{},
	}, nil
}

// leading says whether this controller does the cluster-wide work.
func (c *Controller) leading() bool {
	return c.opts.Leading == nil || c.opts.Leading()
}

// ResyncAll reconciles every Function again, as when this controller has
// just become the leader and must catch up with what changed while
// another one led.
func (c *Controller) ResyncAll() {
	if !c.synced.Load() {
		return // the first sync queues everything
	}
	c.queueAll()
}

// queueAll queues every Function the cache knows, and every Function
// that only its Revisions name (deleted while no one watched), and
// returns how many.
func (c *Controller) queueAll() int {
	c.mu.Lock()
	keys := map[string]bool{}
	for k := range c.fns {
		keys[k] = true
	}
	for _, r := range c.revs {
		keys[r.Namespace+"/"+r.Labels[api.LabelFunction]] = true
	}
	c.mu.Unlock()
	for k := range keys {
		c.queue.Add(k)
	}
	return len(keys)
}

// Ready returns nil once the controller has read every stored object.
func (c *Controller) Ready() error {
	if !c.synced.Load() {
		return errors.New("controller is still reading the store")
	}
	return nil
}

// Run reconciles until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	fnEvents, err := c.functions.Watch(ctx, "")
	if err != nil {
		return fmt.Errorf("controller: watching functions: %w", err)
	}
	revEvents, err := c.revisions.Watch(ctx, "")
	if err != nil {
		return fmt.Errorf("controller: watching revisions: %w", err)
	}
	var wg sync.WaitGroup
	var fnSynced, revSynced atomic.Bool
	markSynced := func() {
		if fnSynced.Load() && revSynced.Load() && !c.synced.Swap(true) {
			c.log.Info("controller synced", "functions", c.queueAll())
		}
	}
	wg.Go(func() {
		for ev := range fnEvents {
			if ev.Type == store.Synced {
				fnSynced.Store(true)
				markSynced()
				continue
			}
			if ev.Err != nil {
				c.log.Error("undecodable function in the store", "namespace", ev.Object.GetNamespace(), "name", ev.Object.GetName(), "error", ev.Err)
				continue
			}
			key := ev.Object.GetNamespace() + "/" + ev.Object.GetName()
			c.mu.Lock()
			if ev.Type == store.Delete {
				delete(c.fns, key)
			} else {
				storeNewer(c.fns, key, ev.Object)
			}
			c.mu.Unlock()
			if c.synced.Load() {
				c.queue.Add(key)
			}
		}
	})
	wg.Go(func() {
		for ev := range revEvents {
			if ev.Type == store.Synced {
				revSynced.Store(true)
				markSynced()
				continue
			}
			if ev.Err != nil {
				c.log.Error("undecodable revision in the store", "namespace", ev.Object.GetNamespace(), "name", ev.Object.GetName(), "error", ev.Err)
				continue
			}
			key := ev.Object.GetNamespace() + "/" + ev.Object.GetName()
			c.mu.Lock()
			old := c.revs[key]
			if ev.Type == store.Delete {
				delete(c.revs, key)
			} else {
				storeNewer(c.revs, key, ev.Object)
			}
			rev := c.revs[key]
			c.mu.Unlock()
			if ev.Type == store.Delete && old != nil {
				c.dropPool(old)
			}
			if rev == nil {
				rev = old
			}
			if rev != nil && c.synced.Load() {
				c.queue.Add(rev.Namespace + "/" + rev.Labels[api.LabelFunction])
			}
		}
	})
	wg.Go(func() { c.scaling.run(ctx) })
	for range c.opts.Workers {
		wg.Go(func() {
			for {
				key, ok := c.queue.Get()
				if !ok {
					return
				}
				if err := c.reconcile(ctx, key); err != nil && ctx.Err() == nil {
					c.log.Warn("reconcile failed; retrying", "function", key, "error", err)
					c.queue.AddAfter(key, 500*time.Millisecond)
				}
				c.queue.Done(key)
			}
		})
	}
	<-ctx.Done()
	c.queue.Close()
	wg.Wait()
	return nil
}

// storeNewer caches obj unless the cache already holds a newer version
// (a watch event can arrive after the controller's own write was cached).
func storeNewer[T interface{ GetResourceVersion() string }](m map[string]T, key string, obj T) {
	if cur, ok := m[key]; ok {
		a, _ := strconv.ParseUint(cur.GetResourceVersion(), 10, 64)
		b, _ := strconv.ParseUint(obj.GetResourceVersion(), 10, 64)
		if a > b {
			return
		}
	}
	m[key] = obj
}

// snapshot returns copies of a Function (nil if it does not exist) and its
// Revisions, oldest first.
func (c *Controller) snapshot(ns, name string) (*api.Function, []*api.Revision) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var fn *api.Function
	if f, ok := c.fns[ns+"/"+name]; ok {
		fn = f.DeepCopy()
	}
	var revs []*api.Revision
	for _, r := range c.revs {
		if r.Namespace == ns && r.Labels[api.LabelFunction] == name {
			revs = append(revs, r.DeepCopy())
		}
	}
	slices.SortFunc(revs, func(a, b *api.Revision) int { return revisionNumber(a) - revisionNumber(b) })
	return fn, revs
}

func revisionNumber(r *api.Revision) int {
	n, _ := strconv.Atoi(r.Labels[api.LabelRevisionNumber])
	return n
}

func (c *Controller) cacheRevision(r *api.Revision) {
	c.mu.Lock()
	defer c.mu.Unlock()
	storeNewer(c.revs, r.Namespace+"/"+r.Name, r.DeepCopy())
}

func (c *Controller) cacheFunction(f *api.Function) {
	c.mu.Lock()
	defer c.mu.Unlock()
	storeNewer(c.fns, f.Namespace+"/"+f.Name, f.DeepCopy())
}

// reconcile brings one Function, its Revisions, pools and route in line.
func (c *Controller) reconcile(ctx context.Context, key string) error {
	ns, name, _ := strings.Cut(key, "/")
	fn, revs := c.snapshot(ns, name)
	if fn == nil {
		return c.finalize(ctx, ns, name, revs)
	}
	// Objects written around the admin API (kubectl apply on a cluster)
	// were never defaulted or validated: do both here, and say in the
	// status what is wrong instead of acting on it.
	stored := fn.DeepCopy()
	fn.SetDefaults()
	if ferr := fn.Validate(); ferr != nil {
		if !c.leading() {
			return nil
		}
		return c.refuseInvalid(ctx, stored, ferr.Error())
	}
	fn.Status = stored.Status

	lead := c.leading()
	var latest *api.Revision
	var cutErr string
	if lead {
		var err error
		if latest, cutErr, err = c.cutRevision(ctx, fn, revs); err != nil {
			return err
		}
		if latest != nil && (len(revs) == 0 || revs[len(revs)-1].Name != latest.Name) {
			revs = append(revs, latest)
		}
	} else if len(revs) > 0 {
		// The leader cuts; a node serves what it has cut.
		latest = revs[len(revs)-1]
	}

	// Readiness of every Revision, from its pool on this node. A
	// Revision the leader found ready counts as ready here too, unless
	// this node knows it failed: requests then start an instance on this
	// node, as after a scale to zero.
	ready := make(map[string]readiness, len(revs))
	for _, r := range revs {
		ready[r.Name] = c.readiness(r)
	}
	latestReady := ""
	for i := len(revs) - 1; i >= 0; i-- {
		rd := ready[revs[i].Name]
		if rd.status == corev1.ConditionTrue || (rd.status != corev1.ConditionFalse && storedReady(revs[i])) {
			latestReady = revs[i].Name
			break
		}
	}

	// Until some revision has been ready, @latest goes to the latest one
	// created, so that the first requests wait for it instead of failing.
	latestTarget := latestReady
	if latestTarget == "" && latest != nil {
		latestTarget = latest.Name
	}
	targets, statusTraffic, routeErr := c.resolveTraffic(fn, revs, latestTarget)
	rules, rulesErr := resolveRules(fn, revs, targets, latestTarget)
	if routeErr == "" {
		routeErr = rulesErr
	}
	var chain *filter.Chain
	if routeErr == "" {
		chain, routeErr = c.chainFor(fn, revs, targets)
	}
	if routeErr == "" {
		c.opts.Routes.Set(activator.Route{Namespace: ns, Function: name, Rules: rules, Targets: targets,
			Chain: chain, Retry: activator.NewRetryPolicy(fn.Spec.Retries)})
		if lead {
			var err error
			if revs, err = c.collectRevisions(ctx, fn, revs, latestReady); err != nil {
				return err
			}
		}
	}
	policy := poolPolicy(fn)

	// The autoscaler sizes what is routed, and the latest Revision so it
	// can become ready; the rest has no instances.
	scaleErr := map[string]string{}
	for _, r := range revs {
		p := c.ensurePool(r)
		if p == nil {
			continue
		}
		p.SetPolicy(policy)
		routed := c.opts.Routes.Routed(ns, r.Name)
		if !routed && (latest == nil || r.Name != latest.Name) {
			c.scaling.untrack(ns, r.Name)
			p.Scale(0)
			continue
		}
		if err := c.scaling.track(r, p, routed); err != nil {
			scaleErr[r.Name] = err.Error()
		}
	}
	for name, msg := range scaleErr {
		ready[name] = readiness{status: corev1.ConditionFalse, reason: "AutoscalingInvalid", message: msg}
	}
	if !lead {
		return nil
	}

	for _, r := range revs {
		if err := c.updateRevisionStatus(ctx, r, ready[r.Name]); err != nil {
			return err
		}
	}
	return c.updateFunctionStatus(ctx, fn, latest, latestReady, ready, statusTraffic, cutErr, routeErr)
}

// refuseInvalid writes a Ready=False condition naming what is invalid in
// a Function's spec, and leaves what it had serving as it was.
func (c *Controller) refuseInvalid(ctx context.Context, fn *api.Function, msg string) error {
	next := fn.Status
	next.ObservedGeneration = fn.Generation
	cond := apis.Condition{Type: api.ConditionReady, Status: corev1.ConditionFalse, Reason: "InvalidSpec", Message: msg}
	next.Conditions = mergeConditions(fn.Status.Conditions, apis.Conditions{cond})
	if jsonEqual(next, fn.Status) {
		return nil
	}
	c.log.Warn("function spec is invalid", "namespace", fn.Namespace, "function", fn.Name, "error", msg)
	fn.Status = next
	updated, err := c.functions.UpdateStatus(ctx, fn)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("updating status of function %s: %w", fn.Name, err)
	}
	c.cacheFunction(updated)
	return nil
}

// finalize removes what is left of a deleted Function.
func (c *Controller) finalize(ctx context.Context, ns, name string, revs []*api.Revision) error {
	c.opts.Routes.Delete(ns, name)
	c.mu.Lock()
	delete(c.chains, ns+"/"+name)
	c.mu.Unlock()
	lead := c.leading()
	for _, r := range revs {
		if lead {
			if err := c.revisions.Delete(ctx, ns, r.Name, ""); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("deleting revision %s of deleted function %s: %w", r.Name, name, err)
			}
		}
		c.dropPool(r)
	}
	if lead && len(revs) > 0 {
		c.log.Info("function deleted with its revisions", "namespace", ns, "function", name, "revisions", len(revs))
	}
	if c.opts.OnDelete != nil {
		c.opts.OnDelete(ns, name)
	}
	return nil
}

// cutRevision creates the next Revision when the template changed. It
// returns the latest Revision, and a message when the template asks for a
// Revision name that is taken.
func (c *Controller) cutRevision(ctx context.Context, fn *api.Function, revs []*api.Revision) (*api.Revision, string, error) {
	var latest *api.Revision
	if len(revs) > 0 {
		latest = revs[len(revs)-1]
	}
	hash := fn.Spec.Template.Hash()
	want := fn.Spec.Template.Metadata.Name
	if latest != nil && latest.Annotations[api.AnnotationTemplateHash] == hash && (want == "" || want == latest.Name) {
		return latest, "", nil
	}
	number := 1
	if latest != nil {
		number = revisionNumber(latest) + 1
	}
	revName := want
	if revName == "" {
		revName = fmt.Sprintf("%s-%05d", fn.Name, number)
	}
	for _, r := range revs {
		if r.Name == revName {
			return latest, fmt.Sprintf("revision name %q is already taken by an earlier template; give the new template another name (--revision-name)", revName), nil
		}
	}
	rev := api.NewRevision(fn, revName, number)
	rev.SetDefaults()
	if fn.UID != "" {
		// On Kubernetes the garbage collector deletes a deleted
		// Function's Revisions even when no wisp node runs.
		rev.OwnerReferences = []metav1.OwnerReference{{APIVersion: api.APIVersion, Kind: api.KindFunction,
			Name: fn.Name, UID: fn.UID, Controller: new(true), BlockOwnerDeletion: new(true)}}
	}
	rev.UID = uuid.NewUUID()
	rev.CreationTimestamp = metav1.NewTime(time.Now().UTC().Truncate(time.Second))
	if c.opts.Pin != nil {
		if err := c.opts.Pin(ctx, rev); err != nil {
			// Try again later: the registry may come back.
			c.queue.AddAfter(fn.Namespace+"/"+fn.Name, pinRetry)
			return latest, fmt.Sprintf("cannot cut revision %s: %v", revName, err), nil
		}
	}
	created, err := c.revisions.Create(ctx, rev)
	if errors.Is(err, store.ErrAlreadyExists) {
		return latest, fmt.Sprintf("revision name %q is already taken; give the template another name (--revision-name)", revName), nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("creating revision %s: %w", revName, err)
	}
	c.cacheRevision(created)
	c.log.Info("revision created", "namespace", fn.Namespace, "function", fn.Name, "revision", revName)
	return created, "", nil
}

// ensurePool returns the Revision's pool, creating it if needed; nil when
// no provider can run it.
func (c *Controller) ensurePool(r *api.Revision) *activator.Pool {
	prov, err := c.opts.Providers.For(r)
	if err != nil {
		return nil
	}
	fnKey := r.Namespace + "/" + r.Labels[api.LabelFunction]
	return c.opts.Pools.GetOrCreate(r.Namespace, r.Name, func() *activator.Pool {
		return activator.NewPool(activator.PoolOptions{
			Revision: r.DeepCopy(),
			Provider: prov,
			Log:      c.opts.Log,
			StopWait: c.opts.StopWait,
			OnChange: func() { c.queue.Add(fnKey) },
			OnPoke:   func() { c.scaling.poke(r.Namespace, r.Name) },
			OnColdStart: func(wait time.Duration) {
				c.scaling.coldStart(r.Namespace, r.Name, wait)
			},
		})
	})
}

// dropPool stops a deleted Revision's instances and releases it.
func (c *Controller) dropPool(r *api.Revision) {
	c.scaling.untrack(r.Namespace, r.Name)
	p := c.opts.Pools.Remove(r.Namespace, r.Name)
	if p == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.StopWait)
		defer cancel()
		p.Close(ctx)
		if prov, err := c.opts.Providers.For(r); err == nil {
			prov.Release(r)
		}
	}()
}

// storedReady says whether the Revision's stored status (written by the
// leader) says Ready.
func storedReady(r *api.Revision) bool {
	cond := r.Status.GetCondition(api.ConditionReady)
	return cond != nil && cond.IsTrue()
}

// readiness is a Revision's Ready condition as derived from its pool.
type readiness struct {
	status          corev1.ConditionStatus
	reason, message string
	desired, actual int32
}

func (c *Controller) readiness(r *api.Revision) readiness {
	if _, err := c.opts.Providers.For(r); err != nil {
		return readiness{status: corev1.ConditionFalse, reason: "RuntimeUnavailable", message: err.Error()}
	}
	p := c.opts.Pools.Get(r.Namespace, r.Name)
	if p == nil {
		return readiness{status: corev1.ConditionUnknown, reason: "Deploying"}
	}
	s := p.Status()
	rd := readiness{desired: int32(s.Desired), actual: int32(s.Ready)}
	switch {
	case s.Ready > 0 && s.Crashing != "":
		rd.status, rd.reason, rd.message = corev1.ConditionTrue, "InstancesCrashing", s.Crashing
	case s.Ready > 0:
		rd.status = corev1.ConditionTrue
	case s.LastError != "":
		rd.status, rd.reason, rd.message = corev1.ConditionFalse, "InstanceFailed", s.LastError
		if s.SourceFailed {
			rd.reason = "SourceFailed"
		}
	case s.Desired == 0 && s.EverReady:
		rd.status, rd.reason = corev1.ConditionTrue, "ScaledToZero"
	case s.Desired == 0:
		// Not routed: keep what was last known (it may have been ready
		// before the node restarted).
		if cond := r.Status.GetCondition(api.ConditionReady); cond != nil && cond.IsTrue() {
			rd.status, rd.reason = corev1.ConditionTrue, "Inactive"
		} else {
			rd.status, rd.reason, rd.message = corev1.ConditionUnknown, "Inactive", "no traffic is routed to this revision"
		}
	default:
		rd.status, rd.reason, rd.message = corev1.ConditionUnknown, "Deploying", "starting the first instance"
	}
	return rd
}

// resolveTraffic turns spec.traffic into route targets and status
// traffic. routeErr says why the route cannot be programmed yet.
func (c *Controller) resolveTraffic(fn *api.Function, revs []*api.Revision, latestReady string) ([]activator.Target, []api.TrafficTarget, string) {
	exists := map[string]bool{}
	for _, r := range revs {
		exists[r.Name] = true
	}
	var targets []activator.Target
	var status []api.TrafficTarget
	routeErr := ""
	for i, t := range fn.Spec.Traffic {
		rev := t.RevisionName
		if t.LatestRevision != nil && *t.LatestRevision {
			rev = latestReady
			if rev == "" && routeErr == "" {
				routeErr = "no revision is ready yet"
			}
		} else if !exists[rev] && routeErr == "" {
			routeErr = fmt.Sprintf("spec.traffic[%d].revisionName: revision %q does not exist", i, rev)
		}
		var pct int64
		if t.Percent != nil {
			pct = *t.Percent
		}
		targets = append(targets, activator.Target{Revision: rev, Percent: pct, Tag: t.Tag})
		st := api.TrafficTarget{Tag: t.Tag, RevisionName: rev, LatestRevision: t.LatestRevision, Percent: t.Percent}
		if t.Tag != "" {
			st.URL = c.url(fn.Namespace, fn.Name, t.Tag)
		}
		status = append(status, st)
	}
	return targets, status, routeErr
}

// resolveRules turns spec.routes into route rules that name Revisions.
func resolveRules(fn *api.Function, revs []*api.Revision, targets []activator.Target, latest string) ([]activator.Rule, string) {
	exists := map[string]bool{}
	for _, r := range revs {
		exists[r.Name] = true
	}
	var rules []activator.Rule
	for i, r := range fn.Spec.Routes {
		rule := activator.Rule{Revision: r.RevisionName, Retry: activator.NewRetryPolicy(r.Retries)}
		if r.Timeout != "" {
			rule.Timeout, _ = time.ParseDuration(r.Timeout) // validated at admission
		}
		switch {
		case r.Tag != "":
			for _, t := range targets {
				if t.Tag == r.Tag {
					rule.Revision = t.Revision
				}
			}
		case r.LatestRevision != nil && *r.LatestRevision:
			rule.Revision = latest
		}
		if !exists[rule.Revision] {
			return nil, fmt.Sprintf("spec.routes[%d]: revision %q does not exist", i, rule.Revision)
		}
		var err error
		if rule.Headers, err = matches(r.Headers, true); err == nil {
			rule.Query, err = matches(r.Query, false)
		}
		if err != nil {
			return nil, fmt.Sprintf("spec.routes[%d]: %v", i, err)
		}
		rules = append(rules, rule)
	}
	return rules, ""
}

func matches(in []api.StringMatch, header bool) ([]activator.Match, error) {
	var out []activator.Match
	for _, m := range in {
		am := activator.Match{Name: m.Name, Exact: m.Exact, Prefix: m.Prefix}
		if header {
			am.Name = http.CanonicalHeaderKey(m.Name)
		}
		if m.Regex != "" {
			re, err := regexp.Compile(`^(?:` + m.Regex + `)$`)
			if err != nil {
				return nil, fmt.Errorf("regex %q: %w", m.Regex, err)
			}
			am.Regex = re
		}
		out = append(out, am)
	}
	return out, nil
}

func (c *Controller) url(ns, name, tag string) string {
	host := activator.HostName(c.opts.Domain, ns, name, tag)
	if c.gatewayPort != "" {
		host = net.JoinHostPort(host, c.gatewayPort)
	}
	return "http://" + host
}

func (c *Controller) updateRevisionStatus(ctx context.Context, r *api.Revision, rd readiness) error {
	next := r.Status
	next.ObservedGeneration = r.Generation
	next.DesiredReplicas, next.ActualReplicas = rd.desired, rd.actual
	next.PanicMode, next.ScaleReason = false, ""
	if d, ok := c.scaling.decision(r.Namespace, r.Name); ok {
		next.PanicMode, next.ScaleReason = d.PanicMode, d.Reason
	}
	next.Conditions = mergeConditions(r.Status.Conditions, apis.Conditions{
		{Type: api.ConditionReady, Status: rd.status, Reason: rd.reason, Message: rd.message},
	})
	if jsonEqual(next, r.Status) {
		return nil
	}
	r.Status = next
	updated, err := c.revisions.UpdateStatus(ctx, r)
	if errors.Is(err, store.ErrNotFound) {
		return nil // deleted meanwhile
	}
	if err != nil {
		return fmt.Errorf("updating status of revision %s: %w", r.Name, err)
	}
	c.cacheRevision(updated)
	return nil
}

func (c *Controller) updateFunctionStatus(ctx context.Context, fn *api.Function, latest *api.Revision, latestReady string,
	ready map[string]readiness, traffic []api.TrafficTarget, cutErr, routeErr string) error {
	next := fn.Status
	next.ObservedGeneration = fn.Generation
	next.URL = c.url(fn.Namespace, fn.Name, "")
	next.Address = strings.TrimSuffix(c.opts.GatewayURL, "/") + "/fn/" + fn.Namespace + "/" + fn.Name
	next.LatestReadyRevisionName = latestReady
	next.LatestCreatedRevisionName = ""
	if latest != nil {
		next.LatestCreatedRevisionName = latest.Name
	}
	if routeErr == "" {
		next.Traffic = traffic
	}

	config := apis.Condition{Type: api.ConditionConfigurationsReady, Status: corev1.ConditionUnknown, Reason: "Deploying"}
	switch {
	case cutErr != "":
		config.Status, config.Reason, config.Message = corev1.ConditionFalse, "RevisionFailed", cutErr
	case latest != nil:
		rd := ready[latest.Name]
		config.Status, config.Reason = rd.status, rd.reason
		if rd.message != "" {
			config.Message = fmt.Sprintf("revision %s: %s", latest.Name, rd.message)
		}
		if rd.status == corev1.ConditionTrue {
			config.Reason = ""
		}
	}
	routes := apis.Condition{Type: api.ConditionRoutesReady, Status: corev1.ConditionTrue}
	if routeErr == "" && latestReady == "" {
		routeErr = "no revision is ready yet; requests wait for the latest one"
	}
	if routeErr != "" {
		routes.Status, routes.Reason, routes.Message = corev1.ConditionUnknown, "TrafficNotResolved", routeErr
		if strings.HasPrefix(routeErr, "spec.traffic") || config.Status == corev1.ConditionFalse {
			routes.Status = corev1.ConditionFalse
		}
	}
	readyCond := apis.Condition{Type: api.ConditionReady, Status: corev1.ConditionTrue}
	for _, sub := range []apis.Condition{config, routes} {
		if sub.Status != corev1.ConditionTrue && readyCond.Status != corev1.ConditionFalse {
			readyCond.Status, readyCond.Reason, readyCond.Message = sub.Status, sub.Reason, sub.Message
		}
	}
	next.Conditions = mergeConditions(fn.Status.Conditions, apis.Conditions{readyCond, config, routes})
	if jsonEqual(next, fn.Status) {
		return nil
	}
	fn.Status = next
	updated, err := c.functions.UpdateStatus(ctx, fn)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("updating status of function %s: %w", fn.Name, err)
	}
	c.cacheFunction(updated)
	return nil
}

// mergeConditions returns want, keeping the LastTransitionTime of every
// condition whose status did not change, and stamping the others now.
func mergeConditions(old, want apis.Conditions) apis.Conditions {
	now := apis.VolatileTime{Inner: metav1.NewTime(time.Now().Truncate(time.Second))}
	out := make(apis.Conditions, 0, len(want))
	for _, w := range want {
		w.LastTransitionTime = now
		for _, o := range old {
			if o.Type == w.Type && o.Status == w.Status {
				w.LastTransitionTime = o.LastTransitionTime
			}
		}
		out = append(out, w)
	}
	return out
}

// jsonEqual compares two values as they would be stored, so that times
// that differ only below a second, or in location, compare equal.
func jsonEqual(a, b any) bool {
	x, errA := json.Marshal(a)
	y, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(x, y)
}
