package api

import (
	"maps"
	"slices"
)

// DeepCopy returns a copy of f that shares no memory with it.
func (f *Function) DeepCopy() *Function {
	if f == nil {
		return nil
	}
	out := new(Function)
	f.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies f into out, sharing no memory with f.
func (f *Function) DeepCopyInto(out *Function) {
	out.TypeMeta = f.TypeMeta
	f.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	f.Spec.Template.DeepCopyInto(&out.Spec.Template)
	out.Spec.Traffic = copyTraffic(f.Spec.Traffic)
	out.Spec.Routes = copyRoutes(f.Spec.Routes)
	out.Spec.Filters = copyGatewayFilters(f.Spec.Filters)
	out.Spec.Retries = f.Spec.Retries.DeepCopy()
	out.Spec.CircuitBreaker = copyPtr(f.Spec.CircuitBreaker)
	out.Spec.OutlierDetection = copyPtr(f.Spec.OutlierDetection)
	out.Status = f.Status
	out.Status.Conditions = f.Status.Conditions.DeepCopy()
	out.Status.Traffic = copyTraffic(f.Status.Traffic)
}

// DeepCopy returns a copy of r that shares no memory with it.
func (r *Revision) DeepCopy() *Revision {
	if r == nil {
		return nil
	}
	out := new(Revision)
	r.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies r into out, sharing no memory with r.
func (r *Revision) DeepCopyInto(out *Revision) {
	out.TypeMeta = r.TypeMeta
	r.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	r.Spec.DeepCopyInto(&out.Spec)
	out.Status = r.Status
	out.Status.Conditions = r.Status.Conditions.DeepCopy()
}

// DeepCopy returns a copy of t that shares no memory with it.
func (t *RevisionTemplate) DeepCopy() *RevisionTemplate {
	if t == nil {
		return nil
	}
	out := new(RevisionTemplate)
	t.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies t into out, sharing no memory with t.
func (t *RevisionTemplate) DeepCopyInto(out *RevisionTemplate) {
	out.Metadata = TemplateMeta{
		Name:        t.Metadata.Name,
		Labels:      maps.Clone(t.Metadata.Labels),
		Annotations: maps.Clone(t.Metadata.Annotations),
	}
	t.Spec.DeepCopyInto(&out.Spec)
}

// DeepCopyInto copies s into out, sharing no memory with s.
func (s *RevisionSpec) DeepCopyInto(out *RevisionSpec) {
	*out = RevisionSpec{
		Env:                  slices.Clone(s.Env),
		ContainerConcurrency: copyPtr(s.ContainerConcurrency),
		TimeoutSeconds:       copyPtr(s.TimeoutSeconds),
	}
	if s.Wasm != nil {
		w := *s.Wasm
		w.Dirs = slices.Clone(w.Dirs)
		out.Wasm = &w
	}
	if s.Process != nil {
		p := *s.Process
		p.Args = slices.Clone(p.Args)
		out.Process = &p
	}
	if s.Container != nil {
		c := *s.Container
		c.Command = slices.Clone(c.Command)
		c.Args = slices.Clone(c.Args)
		out.Container = &c
	}
}

func copyTraffic(in []TrafficTarget) []TrafficTarget {
	if in == nil {
		return nil
	}
	out := make([]TrafficTarget, len(in))
	for i, t := range in {
		t.LatestRevision = copyPtr(t.LatestRevision)
		t.Percent = copyPtr(t.Percent)
		out[i] = t
	}
	return out
}

// copyPtr copies *p, whose type must hold no pointers, maps or slices.
func copyPtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func copyRoutes(in []RouteRule) []RouteRule {
	if in == nil {
		return nil
	}
	out := make([]RouteRule, len(in))
	for i, r := range in {
		r.Headers = slices.Clone(r.Headers)
		r.Query = slices.Clone(r.Query)
		r.LatestRevision = copyPtr(r.LatestRevision)
		r.Retries = r.Retries.DeepCopy()
		out[i] = r
	}
	return out
}

// DeepCopy returns a copy of p that shares no memory with it.
func (p *RetryPolicy) DeepCopy() *RetryPolicy {
	if p == nil {
		return nil
	}
	out := *p
	out.RetryOn = slices.Clone(p.RetryOn)
	out.BudgetPercent = copyPtr(p.BudgetPercent)
	return &out
}

func copyGatewayFilters(in []GatewayFilter) []GatewayFilter {
	if in == nil {
		return nil
	}
	out := make([]GatewayFilter, len(in))
	for i, f := range in {
		if f.Headers != nil {
			h := HeadersFilter{Request: f.Headers.Request.deepCopy(), Response: f.Headers.Response.deepCopy()}
			f.Headers = &h
		}
		f.RateLimit = copyPtr(f.RateLimit)
		if f.Fault != nil {
			f.Fault = &FaultFilter{Delay: copyPtr(f.Fault.Delay), Abort: copyPtr(f.Fault.Abort)}
		}
		if f.Mirror != nil {
			m := *f.Mirror
			m.Percentage = copyPtr(m.Percentage)
			f.Mirror = &m
		}
		if f.CORS != nil {
			c := *f.CORS
			c.AllowOrigins = slices.Clone(c.AllowOrigins)
			c.AllowMethods = slices.Clone(c.AllowMethods)
			c.AllowHeaders = slices.Clone(c.AllowHeaders)
			c.ExposeHeaders = slices.Clone(c.ExposeHeaders)
			f.CORS = &c
		}
		out[i] = f
	}
	return out
}

func (e HeaderEdits) deepCopy() HeaderEdits {
	return HeaderEdits{Set: maps.Clone(e.Set), Add: maps.Clone(e.Add), Remove: slices.Clone(e.Remove)}
}
