package api

// Defaults and limits applied to a RevisionSpec. The timeout and concurrency
// values are Knative Serving's, so that Knative manifests behave the same.
const (
	// DefaultTimeoutSeconds is the request timeout when none is given.
	DefaultTimeoutSeconds int64 = 300
	// MaxTimeoutSeconds is the largest request timeout accepted.
	MaxTimeoutSeconds int64 = 600
	// DefaultContainerConcurrency is the per-instance concurrency when none
	// is given; 0 means unlimited.
	DefaultContainerConcurrency int64 = 0
	// MaxContainerConcurrency is the largest per-instance concurrency accepted.
	MaxContainerConcurrency int64 = 1000
	// DefaultContainerPort is the port a container listens on when none is given.
	DefaultContainerPort int32 = 8080
	// DefaultReadinessPath is the path probed on a process when none is given.
	DefaultReadinessPath = "/"
)

// SetDefaults fills in what a Function may leave out: apiVersion and kind
// (when empty), the namespace, the template's defaults (see
// Revision.SetDefaults) and the traffic (100% to the latest Revision when
// empty). A traffic target without latestRevision gets latestRevision=true
// when it names no Revision and false when it does, and a target without
// percent gets 0, as in Knative. SetDefaults is idempotent.
func (f *Function) SetDefaults() {
	if f.APIVersion == "" {
		f.APIVersion = APIVersion
	}
	if f.Kind == "" {
		f.Kind = KindFunction
	}
	if f.Namespace == "" {
		f.Namespace = DefaultNamespace
	}
	f.Spec.Template.Spec.setDefaults()
	if len(f.Spec.Traffic) == 0 {
		f.Spec.Traffic = []TrafficTarget{{LatestRevision: new(true), Percent: new(int64(100))}}
	}
	for i := range f.Spec.Traffic {
		f.Spec.Traffic[i].setDefaults()
	}
}

// SetDefaults fills in what a Revision may leave out: apiVersion and kind
// (when empty), the namespace, timeoutSeconds (DefaultTimeoutSeconds),
// containerConcurrency (DefaultContainerConcurrency), a process's
// readinessPath (DefaultReadinessPath) and a container's port
// (DefaultContainerPort). A Wasm module's ABI stays empty: the runtime
// detects it from the module's exports. SetDefaults is idempotent.
func (r *Revision) SetDefaults() {
	if r.APIVersion == "" {
		r.APIVersion = APIVersion
	}
	if r.Kind == "" {
		r.Kind = KindRevision
	}
	if r.Namespace == "" {
		r.Namespace = DefaultNamespace
	}
	r.Spec.setDefaults()
}

func (s *RevisionSpec) setDefaults() {
	if s.TimeoutSeconds == nil {
		s.TimeoutSeconds = new(DefaultTimeoutSeconds)
	}
	if s.ContainerConcurrency == nil {
		s.ContainerConcurrency = new(DefaultContainerConcurrency)
	}
	if s.Process != nil && s.Process.ReadinessPath == "" {
		s.Process.ReadinessPath = DefaultReadinessPath
	}
	if s.Container != nil && s.Container.Port == 0 {
		s.Container.Port = DefaultContainerPort
	}
}

func (t *TrafficTarget) setDefaults() {
	if t.LatestRevision == nil {
		t.LatestRevision = new(t.RevisionName == "")
	}
	if t.Percent == nil {
		t.Percent = new(int64(0))
	}
}
