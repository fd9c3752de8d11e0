package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/wisp-faas/wisp/activator"
	"github.com/wisp-faas/wisp/activator/builtin"
	"github.com/wisp-faas/wisp/activator/filter"
	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/controller/store"
)

// DefaultRetainRevisions is how many unrouted Revisions of a Function
// are kept, newest first, before older ones are deleted (Knative's
// min-non-active-revisions).
const DefaultRetainRevisions = 20

// ExtraFilters returns the filters, beyond a Function's own and the
// node's global ones, that apply to fn (the Filter resources that
// select it), with a key that changes whenever they do.
type ExtraFilters func(fn *api.Function) (entries []filter.Entry, key string)

// builtChain is a Function's filter chain with what it was built from:
// a chain is rebuilt only when that changes, so that a rate limit's
// buckets outlive unrelated changes to the Function.
type builtChain struct {
	key   string
	chain *filter.Chain
}

// chainFor returns the filter chain of fn, whose traffic resolved to
// targets; the error names the field that cannot be satisfied.
func (c *Controller) chainFor(fn *api.Function, revs []*api.Revision, targets []activator.Target) (*filter.Chain, string) {
	mirrors := make([]string, len(fn.Spec.Filters))
	for i, f := range fn.Spec.Filters {
		m := f.Mirror
		if m == nil {
			continue
		}
		mirrors[i] = m.RevisionName
		if m.Tag != "" {
			for _, t := range targets {
				if t.Tag == m.Tag {
					mirrors[i] = t.Revision
				}
			}
		}
		if !hasRevision(revs, mirrors[i]) {
			return nil, fmt.Sprintf("spec.filters[%d].mirror: revision %q does not exist", i, mirrors[i])
		}
	}
	var extra []filter.Entry
	extraKey := ""
	if c.opts.ExtraFilters != nil {
		extra, extraKey = c.opts.ExtraFilters(fn)
	}
	keyJSON, _ := json.Marshal(struct {
		Global, Own []api.GatewayFilter
		Mirrors     []string
		Extra       string
	}{c.opts.GlobalFilters, fn.Spec.Filters, mirrors, extraKey})
	key := string(keyJSON)
	fnKey := fn.Namespace + "/" + fn.Name
	c.mu.Lock()
	cached, ok := c.chains[fnKey]
	c.mu.Unlock()
	if ok && cached.key == key {
		return cached.chain, ""
	}

	env := builtin.Env{Mirror: func(rev string) http.Handler {
		if p := c.opts.Pools.Get(fn.Namespace, rev); p != nil {
			return p
		}
		return nil
	}}
	var entries []filter.Entry
	for i, f := range c.opts.GlobalFilters {
		e, err := builtin.New(f, "", env)
		if err != nil {
			return nil, fmt.Sprintf("global filter %d: %v", i, err)
		}
		entries = append(entries, e)
	}
	for i, f := range fn.Spec.Filters {
		e, err := builtin.New(f, mirrors[i], env)
		if err != nil {
			return nil, fmt.Sprintf("spec.filters[%d]: %v", i, err)
		}
		entries = append(entries, e)
	}
	entries = append(entries, extra...)
	var chain *filter.Chain
	if len(entries) > 0 {
		chain = filter.NewChain(entries)
	}
	c.mu.Lock()
	c.chains[fnKey] = builtChain{key: key, chain: chain}
	c.mu.Unlock()
	return chain, ""
}

func hasRevision(revs []*api.Revision, name string) bool {
	for _, r := range revs {
		if r.Name == name {
			return true
		}
	}
	return false
}

// poolPolicy is the circuit breaker and outlier detection fn asks of
// each of its pools.
func poolPolicy(fn *api.Function) activator.PoolPolicy {
	var pp activator.PoolPolicy
	if cb := fn.Spec.CircuitBreaker; cb != nil {
		pp.MaxRequests, pp.MaxPending = cb.MaxRequests, cb.MaxPendingRequests
	}
	if od := fn.Spec.OutlierDetection; od != nil {
		o := &activator.OutlierPolicy{Consecutive5xx: 5, BaseEjection: 30 * time.Second, MaxEjectionPercent: 50}
		if od.Consecutive5xx > 0 {
			o.Consecutive5xx = int64(od.Consecutive5xx)
		}
		if d, err := time.ParseDuration(od.BaseEjectionTime); err == nil && d > 0 {
			o.BaseEjection = d
		}
		if od.MaxEjectionPercent > 0 {
			o.MaxEjectionPercent = int(od.MaxEjectionPercent)
		}
		pp.Outlier = o
	}
	return pp
}

// collectRevisions deletes the oldest Revisions that no route uses, the
// latest created and the latest ready excepted, keeping RetainRevisions
// of them. revs is sorted oldest first.
func (c *Controller) collectRevisions(ctx context.Context, fn *api.Function, revs []*api.Revision, keep ...string) ([]*api.Revision, error) {
	retain := c.opts.RetainRevisions
	if retain == 0 {
		retain = DefaultRetainRevisions
	}
	if retain < 0 {
		return revs, nil
	}
	var unrouted []int
	for i, r := range revs {
		if i == len(revs)-1 || slices.Contains(keep, r.Name) || c.opts.Routes.Routed(fn.Namespace, r.Name) {
			continue
		}
		unrouted = append(unrouted, i)
	}
	if len(unrouted) <= retain {
		return revs, nil
	}
	drop := map[int]bool{}
	for _, i := range unrouted[:len(unrouted)-retain] {
		r := revs[i]
		if err := c.revisions.Delete(ctx, r.Namespace, r.Name, ""); err != nil && !errors.Is(err, store.ErrNotFound) {
			return revs, fmt.Errorf("deleting unrouted revision %s: %w", r.Name, err)
		}
		c.dropPool(r)
		drop[i] = true
		c.log.Info("unrouted revision deleted", "namespace", r.Namespace, "revision", r.Name, "retain", retain)
	}
	kept := revs[:0:0]
	for i, r := range revs {
		if !drop[i] {
			kept = append(kept, r)
		}
	}
	return kept, nil
}

// Resync reconciles every Function of a namespace again, as when the
// filters that apply to them changed.
func (c *Controller) Resync(namespace string) {
	c.mu.Lock()
	var keys []string
	for k, f := range c.fns {
		if f.Namespace == namespace {
			keys = append(keys, k)
		}
	}
	c.mu.Unlock()
	for _, k := range keys {
		c.queue.Add(k)
	}
}
