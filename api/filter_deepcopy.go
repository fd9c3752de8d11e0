package api

import (
	"bytes"
	"maps"
	"slices"
)

// DeepCopy returns a copy of f that shares no memory with it.
func (f *Filter) DeepCopy() *Filter {
	if f == nil {
		return nil
	}
	out := new(Filter)
	f.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies f into out, sharing no memory with f.
func (f *Filter) DeepCopyInto(out *Filter) {
	out.TypeMeta = f.TypeMeta
	f.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	f.Spec.DeepCopyInto(&out.Spec)
	out.Status = f.Status
	out.Status.Conditions = f.Status.Conditions.DeepCopy()
}

// DeepCopyInto copies s into out, sharing no memory with s.
func (s *FilterSpec) DeepCopyInto(out *FilterSpec) {
	*out = *s
	if s.PluginConfig != nil {
		out.PluginConfig = bytes.Clone(s.PluginConfig)
	}
	if s.VMConfig != nil {
		out.VMConfig = &FilterVMConfig{Env: slices.Clone(s.VMConfig.Env)}
	}
	if s.Selector != nil {
		out.Selector = &FilterSelector{
			Functions:   slices.Clone(s.Selector.Functions),
			MatchLabels: maps.Clone(s.Selector.MatchLabels),
		}
	}
}
