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
		out[i] = r
	}
	return out
}
