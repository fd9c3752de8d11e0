package api

import (
	"bytes"
	"fmt"
	"math"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"knative.dev/pkg/apis"
	"knative.dev/pkg/kmp"
)

// Wasm ABIs a WasmSource may name.
const (
	// ABIWagi is the WAGI (CGI over WASI) ABI: a command module, one
	// instance per request.
	ABIWagi = "wagi"
	// ABIHTTP is the reactor handler ABI: a module exporting a handler,
	// instances reused from a pool.
	ABIHTTP = "http"
)

// Values of the AnnotationMetric annotation.
const (
	MetricConcurrency = "concurrency"
	MetricRPS         = "rps"
)

// Bounds of the AnnotationWindow annotation, as in Knative.
const (
	MinWindow = 6 * time.Second
	MaxWindow = time.Hour
)

// MaxFunctionNameLength is the longest Function name: a DNS label (63)
// less room for the "-00001" suffix of its Revision names (see RevisionName).
const MaxFunctionNameLength = validation.DNS1123LabelMaxLength - len("-00001")

var (
	// reservedEnv lists the environment variables wisp sets itself.
	reservedEnv = []string{"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"}
	// reservedMD lists the label and annotation keys wisp sets on Revisions.
	reservedMD = []string{LabelFunction, LabelRevisionNumber, AnnotationTemplateHash}

	envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	sha256RE  = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	ociRefRE  = regexp.MustCompile(`^` + ociDomain + `(?:/` + ociPathComponent + `)+` + ociTag + ociDigest + `$`)
)

// The grammar of an OCI reference with a mandatory registry, after
// github.com/distribution/reference.
const (
	ociDomainComponent = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
	ociDomain          = `(?:` + ociDomainComponent + `(?:\.` + ociDomainComponent + `)*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?`
	ociPathComponent   = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
	ociTag             = `(?::[\w][\w.-]{0,127})?`
	ociDigest          = `(?:@[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,})?`
)

// Validate checks a Function. It accepts a Function with or without
// defaults applied; fields left empty for SetDefaults to fill are not errors.
// Every error names the field path, e.g. "spec.template.spec.timeoutSeconds".
func (f *Function) Validate() *apis.FieldError {
	errs := validateTypeMeta(f.APIVersion, f.Kind, KindFunction)
	errs = errs.Also(validateFunctionName(f.Name).ViaField("metadata"))
	errs = errs.Also(validateNamespace(f.Namespace).ViaField("metadata"))
	for k := range f.Annotations {
		if isAutoscalingAnnotation(k) {
			errs = errs.Also(apis.ErrInvalidKeyName(k, "metadata.annotations",
				"autoscaling annotations belong in spec.template.metadata.annotations"))
		}
	}
	errs = errs.Also(f.Spec.Template.validate(f.Name).ViaField("spec.template"))
	errs = errs.Also(validateTraffic(f.Spec.Traffic, f.Name).ViaField("spec.traffic"))
	for i := range f.Spec.Routes {
		errs = errs.Also(f.Spec.Routes[i].validate(f.Name, f.Spec.Traffic).ViaFieldIndex("spec.routes", i))
	}
	errs = errs.Also(f.Spec.validatePolicy().ViaField("spec"))
	return errs
}

func (r *RouteRule) validate(function string, traffic []TrafficTarget) *apis.FieldError {
	var errs *apis.FieldError
	if len(r.Headers)+len(r.Query) == 0 {
		errs = errs.Also(apis.ErrMissingOneOf("headers", "query"))
	}
	for i := range r.Headers {
		errs = errs.Also(r.Headers[i].validate(true).ViaFieldIndex("headers", i))
	}
	for i := range r.Query {
		errs = errs.Also(r.Query[i].validate(false).ViaFieldIndex("query", i))
	}
	targets := 0
	if r.RevisionName != "" {
		targets++
		if !strings.HasPrefix(r.RevisionName, function+"-") {
			errs = errs.Also(apis.ErrInvalidValue(r.RevisionName, "revisionName", fmt.Sprintf("want a revision of this function: %s-...", function)))
		}
	}
	if r.Tag != "" {
		targets++
		if !hasTag(traffic, r.Tag) {
			errs = errs.Also(apis.ErrInvalidValue(r.Tag, "tag", "no spec.traffic target has this tag"))
		}
	}
	if r.LatestRevision != nil && *r.LatestRevision {
		targets++
	}
	switch {
	case targets == 0:
		errs = errs.Also(apis.ErrMissingOneOf("revisionName", "tag", "latestRevision"))
	case targets > 1:
		errs = errs.Also(apis.ErrMultipleOneOf("revisionName", "tag", "latestRevision"))
	}
	return errs
}

func (m *StringMatch) validate(header bool) *apis.FieldError {
	var errs *apis.FieldError
	switch {
	case m.Name == "":
		errs = errs.Also(apis.ErrMissingField("name"))
	case header && len(validation.IsHTTPHeaderName(m.Name)) > 0:
		errs = errs.Also(apis.ErrInvalidValue(m.Name, "name", "want an HTTP header name"))
	}
	set := 0
	for _, v := range []string{m.Exact, m.Prefix, m.Regex} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		errs = errs.Also(&apis.FieldError{Message: "expected exactly one, got " + fmt.Sprint(set), Paths: []string{"exact", "prefix", "regex"}})
	}
	if m.Regex != "" {
		if _, err := regexp.Compile(m.Regex); err != nil {
			errs = errs.Also(apis.ErrInvalidValue(m.Regex, "regex", err.Error()))
		}
	}
	return errs
}

// ValidateUpdate checks f as a replacement of old: f must be valid, keep
// old's name and namespace, and change its template's name whenever it
// changes a template that names its Revision (a Revision name is used once).
func (f *Function) ValidateUpdate(old *Function) *apis.FieldError {
	errs := f.Validate()
	errs = errs.Also(validateImmutable(old.Name, f.Name, "metadata.name"))
	errs = errs.Also(validateImmutable(old.Namespace, f.Namespace, "metadata.namespace"))
	name := f.Spec.Template.Metadata.Name
	if name != "" && name == old.Spec.Template.Metadata.Name && f.Spec.Template.Hash() != old.Spec.Template.Hash() {
		errs = errs.Also(&apis.FieldError{
			Message: fmt.Sprintf("the template changed but its name %q did not", name),
			Paths:   []string{"spec.template.metadata.name"},
			Details: "a Revision name is used only once: set a new name, or remove it to have one generated",
		})
	}
	return errs
}

// Validate checks a Revision, with or without defaults applied. A Revision
// must carry the LabelFunction label, and its name must start with
// "<function>-".
func (r *Revision) Validate() *apis.FieldError {
	errs := validateTypeMeta(r.APIVersion, r.Kind, KindRevision)
	errs = errs.Also(validateNamespace(r.Namespace).ViaField("metadata"))
	switch msgs := validation.IsDNS1035Label(r.Name); {
	case r.Name == "":
		errs = errs.Also(apis.ErrMissingField("metadata.name"))
	case len(msgs) > 0:
		errs = errs.Also(apis.ErrInvalidValue(r.Name, "metadata.name", msgs...))
	}
	switch fn := r.Labels[LabelFunction]; {
	case fn == "":
		errs = errs.Also(apis.ErrMissingField("metadata.labels[" + LabelFunction + "]"))
	case !strings.HasPrefix(r.Name, fn+"-"):
		errs = errs.Also(apis.ErrInvalidValue(r.Name, "metadata.name",
			fmt.Sprintf("the name of a Revision of Function %q must start with %q", fn, fn+"-")))
	}
	errs = errs.Also(validateAutoscaling(r.Annotations).ViaField("metadata.annotations"))
	return errs.Also(r.Spec.validate().ViaField("spec"))
}

// ValidateUpdate checks r as a replacement of old: r must be valid and keep
// old's name, namespace and spec, since a Revision is immutable.
func (r *Revision) ValidateUpdate(old *Revision) *apis.FieldError {
	errs := r.Validate()
	errs = errs.Also(validateImmutable(old.Name, r.Name, "metadata.name"))
	errs = errs.Also(validateImmutable(old.Namespace, r.Namespace, "metadata.namespace"))
	if !bytes.Equal(mustMarshal(old.Spec), mustMarshal(r.Spec)) {
		diff, err := kmp.ShortDiff(old.Spec, r.Spec)
		if err != nil {
			diff = err.Error()
		}
		errs = errs.Also(&apis.FieldError{
			Message: "a Revision's spec is immutable: change the Function's template to create a new Revision",
			Paths:   []string{"spec"},
			Details: "(-old +new) " + diff,
		})
	}
	return errs
}

func validateTypeMeta(apiVersion, kind, wantKind string) *apis.FieldError {
	var errs *apis.FieldError
	if apiVersion != "" && apiVersion != APIVersion {
		errs = errs.Also(apis.ErrInvalidValue(apiVersion, "apiVersion", fmt.Sprintf("want %q", APIVersion)))
	}
	if kind != "" && kind != wantKind {
		errs = errs.Also(apis.ErrInvalidValue(kind, "kind", fmt.Sprintf("want %q", wantKind)))
	}
	return errs
}

func validateFunctionName(name string) *apis.FieldError {
	if name == "" {
		return apis.ErrMissingField("name")
	}
	if msgs := validation.IsDNS1035Label(name); len(msgs) > 0 {
		return apis.ErrInvalidValue(name, "name", msgs...)
	}
	if len(name) > MaxFunctionNameLength {
		return apis.ErrInvalidValue(name, "name", fmt.Sprintf(
			"must be no more than %d characters, so that Revision names such as %q fit in a DNS label",
			MaxFunctionNameLength, RevisionName("<name>", 1)))
	}
	return nil
}

func validateNamespace(ns string) *apis.FieldError {
	if ns == "" {
		return nil // SetDefaults fills in DefaultNamespace.
	}
	if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
		return apis.ErrInvalidValue(ns, "namespace", msgs...)
	}
	return nil
}

func validateImmutable(old, cur, path string) *apis.FieldError {
	if old == cur {
		return nil
	}
	return &apis.FieldError{
		Message: "field is immutable",
		Paths:   []string{path},
		Details: fmt.Sprintf("was %q, now %q", old, cur),
	}
}

func (t *RevisionTemplate) validate(function string) *apis.FieldError {
	var errs *apis.FieldError
	if name := t.Metadata.Name; name != "" {
		if msgs := validation.IsDNS1035Label(name); len(msgs) > 0 {
			errs = errs.Also(apis.ErrInvalidValue(name, "metadata.name", msgs...))
		} else if prefix := function + "-"; function != "" && !strings.HasPrefix(name, prefix) {
			errs = errs.Also(apis.ErrInvalidValue(name, "metadata.name", fmt.Sprintf("must start with %q", prefix)))
		}
	}
	for _, k := range reservedMD {
		if _, ok := t.Metadata.Labels[k]; ok {
			errs = errs.Also(apis.ErrInvalidKeyName(k, "metadata.labels", "reserved: wisp sets it"))
		}
		if _, ok := t.Metadata.Annotations[k]; ok {
			errs = errs.Also(apis.ErrInvalidKeyName(k, "metadata.annotations", "reserved: wisp sets it"))
		}
	}
	errs = errs.Also(validateAutoscaling(t.Metadata.Annotations).ViaField("metadata.annotations"))
	return errs.Also(t.Spec.validate().ViaField("spec"))
}

func (s *RevisionSpec) validate() *apis.FieldError {
	var errs *apis.FieldError
	var set []string
	if s.Wasm != nil {
		set = append(set, "wasm")
		errs = errs.Also(s.Wasm.validate().ViaField("wasm"))
	}
	if s.Process != nil {
		set = append(set, "process")
		errs = errs.Also(s.Process.validate().ViaField("process"))
	}
	if s.Container != nil {
		set = append(set, "container")
		errs = errs.Also(s.Container.validate().ViaField("container"))
	}
	switch len(set) {
	case 0:
		errs = errs.Also(apis.ErrMissingOneOf("wasm", "process", "container"))
	case 1:
	default:
		errs = errs.Also(apis.ErrMultipleOneOf(set...))
	}
	errs = errs.Also(validateEnv(s.Env).ViaField("env"))
	if cc := s.ContainerConcurrency; cc != nil && (*cc < 0 || *cc > MaxContainerConcurrency) {
		errs = errs.Also(apis.ErrOutOfBoundsValue(*cc, 0, MaxContainerConcurrency, "containerConcurrency"))
	}
	if ts := s.TimeoutSeconds; ts != nil && (*ts < 1 || *ts > MaxTimeoutSeconds) {
		errs = errs.Also(apis.ErrOutOfBoundsValue(*ts, 1, MaxTimeoutSeconds, "timeoutSeconds"))
	}
	return errs
}

func (w *WasmSource) validate() *apis.FieldError {
	var errs *apis.FieldError
	switch m := w.Module; {
	case m == "":
		errs = errs.Also(apis.ErrMissingField("module"))
	case strings.HasPrefix(m, "sha256:"):
		if !sha256RE.MatchString(m) {
			errs = errs.Also(apis.ErrInvalidValue(m, "module", "want sha256: and 64 lowercase hex digits"))
		}
	case strings.HasPrefix(m, "oci://"):
		if !ociRefRE.MatchString(strings.TrimPrefix(m, "oci://")) {
			errs = errs.Also(apis.ErrInvalidValue(m, "module", "want oci://<registry>/<repository>[:<tag>][@<digest>]"))
		}
	default:
		errs = errs.Also(apis.ErrInvalidValue(m, "module", `want "sha256:<hex>" or "oci://<registry>/<repository>[:<tag>]"`))
	}
	switch w.ABI {
	case "", ABIWagi, ABIHTTP:
	default:
		errs = errs.Also(apis.ErrInvalidValue(w.ABI, "abi", fmt.Sprintf("want %q, %q, or empty to detect it", ABIWagi, ABIHTTP)))
	}
	if w.MemoryLimitPages > MaxWasmMemoryPages {
		errs = errs.Also(apis.ErrOutOfBoundsValue(w.MemoryLimitPages, 0, MaxWasmMemoryPages, "memoryLimitPages"))
	}
	if w.MaxRequestBodyBytes < 0 {
		errs = errs.Also(apis.ErrInvalidValue(w.MaxRequestBodyBytes, "maxRequestBodyBytes", "want 0 (the default) or more"))
	}
	guests := map[string]bool{}
	for i, d := range w.Dirs {
		if !path.IsAbs(d.HostPath) {
			errs = errs.Also(apis.ErrInvalidValue(d.HostPath, "hostPath", "want an absolute path on the node").ViaFieldIndex("dirs", i))
		}
		if !path.IsAbs(d.GuestPath) {
			errs = errs.Also(apis.ErrInvalidValue(d.GuestPath, "guestPath", "want an absolute path, e.g. /data").ViaFieldIndex("dirs", i))
		} else if guests[path.Clean(d.GuestPath)] {
			errs = errs.Also(apis.ErrInvalidValue(d.GuestPath, "guestPath", "another dir is already mounted there").ViaFieldIndex("dirs", i))
		}
		guests[path.Clean(d.GuestPath)] = true
	}
	return errs
}

// MaxWasmMemoryPages is the most linear memory a 32-bit Wasm module can
// address: 65536 pages of 64 KiB, 4 GiB.
const MaxWasmMemoryPages = 65536

func (p *ProcessSource) validate() *apis.FieldError {
	var errs *apis.FieldError
	switch c := p.Command; {
	case c == "":
		errs = errs.Also(apis.ErrMissingField("command"))
	case strings.Contains(c, "/") && !strings.HasPrefix(c, "/"):
		errs = errs.Also(apis.ErrInvalidValue(c, "command", "want an absolute path or a bare command name"))
	}
	if rp := p.ReadinessPath; rp != "" && !strings.HasPrefix(rp, "/") {
		errs = errs.Also(apis.ErrInvalidValue(rp, "readinessPath", `must start with "/"`))
	}
	return errs
}

func (c *ContainerSource) validate() *apis.FieldError {
	var errs *apis.FieldError
	if c.Image == "" {
		errs = errs.Also(apis.ErrMissingField("image"))
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = errs.Also(apis.ErrOutOfBoundsValue(c.Port, 1, 65535, "port"))
	}
	return errs
}

func validateEnv(env []EnvVar) *apis.FieldError {
	names := make([]string, len(env))
	for i, e := range env {
		names[i] = e.Name
	}
	return validateEnvNames(names, reservedEnv)
}

// validateEnvNames checks the names of a list of environment variables:
// present, well formed, not reserved, and each given once. Errors are
// indexed by position in the list.
func validateEnvNames(names, reserved []string) *apis.FieldError {
	var errs *apis.FieldError
	seen := make(map[string]int, len(names))
	for i, name := range names {
		switch {
		case name == "":
			errs = errs.Also(apis.ErrMissingField("name").ViaIndex(i))
			continue
		case !envNameRE.MatchString(name):
			errs = errs.Also(apis.ErrInvalidValue(name, "name",
				"must be letters, digits and '_', not starting with a digit").ViaIndex(i))
		case slices.Contains(reserved, name):
			errs = errs.Also(apis.ErrInvalidValue(name, "name",
				fmt.Sprintf("reserved: wisp sets %s itself", strings.Join(reserved, ", "))).ViaIndex(i))
		}
		if j, dup := seen[name]; dup {
			errs = errs.Also(&apis.FieldError{
				Message: fmt.Sprintf("duplicate environment variable %q", name),
				Paths:   []string{fmt.Sprintf("[%d].name", j), fmt.Sprintf("[%d].name", i)},
			})
		} else {
			seen[name] = i
		}
	}
	return errs
}

func isAutoscalingAnnotation(key string) bool {
	return strings.HasPrefix(key, "autoscaling.knative.dev/")
}

// validateAutoscaling checks the autoscaling annotations wisp honours;
// other annotations, including other autoscaling.knative.dev/ ones, pass.
func validateAutoscaling(ann map[string]string) *apis.FieldError {
	var errs *apis.FieldError
	scale := make(map[string]int64, 3)
	for _, k := range []string{AnnotationMinScale, AnnotationMaxScale, AnnotationInitialScale} {
		v, ok := ann[k]
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 0 {
			errs = errs.Also(apis.ErrInvalidValue(v, apis.CurrentField, "want an integer >= 0").ViaKey(k))
			continue
		}
		scale[k] = n
	}
	lo, hasLo := scale[AnnotationMinScale]
	if hi := scale[AnnotationMaxScale]; hasLo && hi > 0 && lo > hi {
		errs = errs.Also(&apis.FieldError{
			Message: fmt.Sprintf("min-scale %d is greater than max-scale %d", lo, hi),
			Paths:   []string{"[" + AnnotationMinScale + "]", "[" + AnnotationMaxScale + "]"},
		})
	}
	if v, ok := ann[AnnotationMetric]; ok && v != MetricConcurrency && v != MetricRPS {
		errs = errs.Also(apis.ErrInvalidValue(v, apis.CurrentField,
			fmt.Sprintf("want %q or %q", MetricConcurrency, MetricRPS)).ViaKey(AnnotationMetric))
	}
	if v, ok := ann[AnnotationWindow]; ok {
		if d, err := time.ParseDuration(v); err != nil || d < MinWindow || d > MaxWindow {
			errs = errs.Also(apis.ErrInvalidValue(v, apis.CurrentField,
				fmt.Sprintf("want a duration between %v and %v", MinWindow, MaxWindow)).ViaKey(AnnotationWindow))
		}
	}
	if v, ok := ann[AnnotationTarget]; ok {
		if x, err := strconv.ParseFloat(v, 64); err != nil || !(x > 0) || math.IsInf(x, 1) {
			errs = errs.Also(apis.ErrInvalidValue(v, apis.CurrentField, "want a number > 0").ViaKey(AnnotationTarget))
		}
	}
	return errs
}

func validateTraffic(traffic []TrafficTarget, function string) *apis.FieldError {
	if len(traffic) == 0 {
		return nil // SetDefaults sends 100% to the latest Revision.
	}
	var errs *apis.FieldError
	var sum int64
	tags := make(map[string]int, len(traffic))
	for i, t := range traffic {
		errs = errs.Also(t.validate(function).ViaIndex(i))
		if t.Percent != nil {
			sum += *t.Percent
		}
		if t.Tag == "" {
			continue
		}
		if j, dup := tags[t.Tag]; dup {
			errs = errs.Also(&apis.FieldError{
				Message: fmt.Sprintf("duplicate tag %q", t.Tag),
				Paths:   []string{fmt.Sprintf("[%d].tag", j), fmt.Sprintf("[%d].tag", i)},
			})
		} else {
			tags[t.Tag] = i
		}
	}
	if sum != 100 {
		errs = errs.Also(&apis.FieldError{
			Message: fmt.Sprintf("traffic percents sum to %d, want 100", sum),
			Paths:   []string{apis.CurrentField},
		})
	}
	return errs
}

func (t *TrafficTarget) validate(function string) *apis.FieldError {
	var errs *apis.FieldError
	latest := t.RevisionName == "" // what SetDefaults assumes when unset
	if t.LatestRevision != nil {
		latest = *t.LatestRevision
	}
	switch {
	case t.RevisionName != "" && latest:
		errs = errs.Also(apis.ErrMultipleOneOf("revisionName", "latestRevision"))
	case t.RevisionName == "" && !latest:
		errs = errs.Also(apis.ErrMissingOneOf("revisionName", "latestRevision"))
	}
	if name := t.RevisionName; name != "" {
		if msgs := validation.IsDNS1035Label(name); len(msgs) > 0 {
			errs = errs.Also(apis.ErrInvalidValue(name, "revisionName", msgs...))
		} else if prefix := function + "-"; function != "" && !strings.HasPrefix(name, prefix) {
			errs = errs.Also(apis.ErrInvalidValue(name, "revisionName",
				fmt.Sprintf("not a Revision of Function %q: its name must start with %q", function, prefix)))
		}
	}
	var percent int64
	if t.Percent != nil {
		percent = *t.Percent
	}
	switch {
	case percent < 0 || percent > 100:
		errs = errs.Also(apis.ErrOutOfBoundsValue(percent, 0, 100, "percent"))
	case percent == 0 && t.Tag == "":
		errs = errs.Also(&apis.FieldError{
			Message: "a target with 0 percent and no tag receives no traffic",
			Paths:   []string{"percent"},
			Details: "give it a tag to reach it by its own URL, or remove it",
		})
	}
	if tag := t.Tag; tag != "" {
		if msgs := validation.IsDNS1035Label(tag); len(msgs) > 0 {
			errs = errs.Also(apis.ErrInvalidValue(tag, "tag", msgs...))
		} else if host := tag + "-" + function; len(host) > validation.DNS1123LabelMaxLength {
			errs = errs.Also(apis.ErrInvalidValue(tag, "tag", fmt.Sprintf(
				"too long: the host label %q must be no more than %d characters", host, validation.DNS1123LabelMaxLength)))
		}
	}
	if t.URL != "" {
		errs = errs.Also(&apis.FieldError{Message: "must not be set", Paths: []string{"url"}, Details: "url is reported in status only"})
	}
	return errs
}
