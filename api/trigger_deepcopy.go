package api

import "maps"

// DeepCopy returns a copy of t that shares no memory with it.
func (t *Trigger) DeepCopy() *Trigger {
	if t == nil {
		return nil
	}
	out := new(Trigger)
	t.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies t into out, sharing no memory with t.
func (t *Trigger) DeepCopyInto(out *Trigger) {
	out.TypeMeta = t.TypeMeta
	t.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	out.Spec = t.Spec
	if t.Spec.Filters != nil {
		out.Spec.Filters = make([]EventFilter, len(t.Spec.Filters))
		for i, f := range t.Spec.Filters {
			out.Spec.Filters[i] = EventFilter{Exact: maps.Clone(f.Exact), Prefix: maps.Clone(f.Prefix), Suffix: maps.Clone(f.Suffix)}
		}
	}
	out.Spec.Sink.Ref = copyPtr(t.Spec.Sink.Ref)
	out.Spec.Delivery.Retry = copyPtr(t.Spec.Delivery.Retry)
	out.Status = t.Status
	out.Status.Conditions = t.Status.Conditions.DeepCopy()
	out.Status.LastErrorTime = t.Status.LastErrorTime.DeepCopy()
}
