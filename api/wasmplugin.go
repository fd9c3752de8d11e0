package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"
	"knative.dev/serving/pkg/apis/serving"
)

// Istio's WasmPlugin (extensions.istio.io/v1alpha1), as defined by
// istio.io/api v1.32.0 (extensions/v1alpha1/wasm.proto and the CRD in
// kubernetes/customresourcedefinitions.gen.yaml), and its conversion to
// and from a Filter. The types are plain structs in the CRD's JSON shape,
// so that wisp does not depend on Istio's Go module.
//
// The mapping, field by field (Filter ↔ WasmPlugin):
//
//	spec.source oci://R/P[:T][@D]  ↔ spec.url, pinned to the manifest digest D on export
//	spec.source sha256:<hex>       → refused: an uploaded module lives on the node only
//	(none)                         ← spec.url http://, https://, file://: refused
//	spec.sha256 (module bytes)     ↔ metadata.annotations[wisp.dev/module-sha256]
//	the digest D of spec.source    ↔ spec.sha256 (Istio checks the OCI manifest digest)
//	spec.plainHTTP                 ↔ metadata.annotations[wisp.dev/plain-http]
//	spec.selector.functions [F]    ↔ spec.selector.matchLabels[serving.knative.dev/service] F
//	spec.selector.functions [F,G]  → refused: Istio's selector cannot name several workloads
//	spec.selector.matchLabels      ↔ spec.selector.matchLabels
//	(none)                         ← spec.targetRef, spec.targetRefs, spec.match: refused
//	spec.phase                     ↔ spec.phase (empty ↔ UNSPECIFIED_PHASE or absent)
//	spec.priority                  ↔ spec.priority (0 ↔ absent)
//	spec.pluginConfig (object)     ↔ spec.pluginConfig; any other JSON value is refused
//	spec.pluginName                ↔ spec.pluginName
//	spec.vmConfig.env              ↔ spec.vmConfig.env (INLINE, HOST)
//	spec.failStrategy              ↔ spec.failStrategy; FAIL_RELOAD → FAIL_CLOSE
//	spec.imagePullPolicy           ↔ spec.imagePullPolicy
//	(HTTP)                         ↔ spec.type HTTP or absent; NETWORK refused
//	(none)                         ← spec.imagePullSecret, spec.verificationKey: ignored
//
// The doc comments of FilterToWasmPlugin and FromWasmPlugin give the
// reasons.

// The WasmPlugin documents Decode accepts and FilterToWasmPlugin writes.
const (
	WasmPluginAPIVersion = "extensions.istio.io/v1alpha1"
	KindWasmPlugin       = "WasmPlugin"
)

// Annotations that carry on a WasmPlugin what a Filter has and Istio's
// spec has not, so that a Filter survives the round trip. Istio ignores
// them.
const (
	// AnnotationModuleSHA256 holds a Filter's spec.sha256, the sha256 of
	// the module's bytes. It cannot go into the WasmPlugin's own sha256,
	// which Istio checks against the OCI manifest digest of an oci:// URL
	// (istio/istio pkg/wasm: the digest of the image it fetched), not
	// against the module's bytes.
	AnnotationModuleSHA256 = "wisp.dev/module-sha256"
	// AnnotationPlainHTTP is "true" for a Filter pulled over plain HTTP
	// (spec.plainHTTP). Istio has no such field: its fetcher falls back
	// to plain HTTP by itself when a registry answers HTTPS with HTTP.
	AnnotationPlainHTTP = "wisp.dev/plain-http"
)

// Values of Istio's WasmPlugin that a Filter does not spell the same.
const (
	// PluginTypeUnspecified and PluginTypeHTTP are the HTTP (layer-7)
	// plugins that a Filter is; PluginTypeNetwork (layer 4) has no wisp
	// counterpart.
	PluginTypeUnspecified = "UNSPECIFIED_PLUGIN_TYPE"
	PluginTypeHTTP        = "HTTP"
	PluginTypeNetwork     = "NETWORK"
	// FailReload creates a new VM for the next request after a crash.
	// wisp's FAIL_CLOSE already does so (bounded by the gateway's
	// crash-loop limit), so it becomes FailClose.
	FailReload = "FAIL_RELOAD"
	// PullUnspecified is Istio's default pull policy: IfNotPresent, but
	// Always for a tag "latest".
	PullUnspecified = "UNSPECIFIED_POLICY"
)

// WasmPlugin is Istio's extensions.istio.io/v1alpha1 WasmPlugin.
type WasmPlugin struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec WasmPluginSpec `json:"spec"`
	// Status is Istio's (conditions, validationMessages). It is kept so
	// that a document read back from a cluster decodes; conversions
	// ignore it.
	Status json.RawMessage `json:"status,omitempty"`
}

// WasmPluginSpec is the spec of Istio's WasmPlugin, every field of
// istio.io/api v1.32.0.
type WasmPluginSpec struct {
	Selector        *WasmPluginSelector         `json:"selector,omitempty"`
	TargetRef       *WasmPluginTargetRef        `json:"targetRef,omitempty"`
	TargetRefs      []WasmPluginTargetRef       `json:"targetRefs,omitempty"`
	URL             string                      `json:"url"`
	SHA256          string                      `json:"sha256,omitempty"`
	ImagePullPolicy string                      `json:"imagePullPolicy,omitempty"`
	ImagePullSecret string                      `json:"imagePullSecret,omitempty"`
	VerificationKey string                      `json:"verificationKey,omitempty"`
	PluginConfig    json.RawMessage             `json:"pluginConfig,omitempty"`
	PluginName      string                      `json:"pluginName,omitempty"`
	Phase           string                      `json:"phase,omitempty"`
	Priority        *int32                      `json:"priority,omitempty"`
	FailStrategy    string                      `json:"failStrategy,omitempty"`
	VMConfig        *FilterVMConfig             `json:"vmConfig,omitempty"` // the same shape as Istio's
	Match           []WasmPluginTrafficSelector `json:"match,omitempty"`
	Type            string                      `json:"type,omitempty"`
}

// WasmPluginSelector is Istio's WorkloadSelector: labels a workload
// (pod) must all have.
type WasmPluginSelector struct {
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// WasmPluginTargetRef is Istio's PolicyTargetReference.
type WasmPluginTargetRef struct {
	Group     string `json:"group,omitempty"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// WasmPluginTrafficSelector is an entry of a WasmPlugin's match.
type WasmPluginTrafficSelector struct {
	Mode  string                   `json:"mode,omitempty"`
	Ports []WasmPluginPortSelector `json:"ports,omitempty"`
}

// WasmPluginPortSelector is Istio's PortSelector.
type WasmPluginPortSelector struct {
	Number uint32 `json:"number"`
}

// FilterToWasmPlugin writes f as an Istio WasmPlugin of the same name,
// namespace, labels and annotations, to run the same module with the same
// configuration in an Istio mesh. digest is the OCI manifest digest
// ("sha256:<hex>") that f's oci:// tag names now, to pin the URL to; it
// may be empty when f's source already names a digest (and must then
// equal it). The status is not written: it is Istio's.
//
// Decisions, field by field:
//   - spec.source oci://R/P[:T] becomes spec.url oci://R/P[:T]@<digest>,
//     and spec.sha256 the digest's hex digits, which Istio checks against
//     the manifest it fetches: both runtimes then run the same module,
//     whatever the tag does later. The tag stays in the URL for people;
//     the digest decides, in Istio (go-containerregistry) as in wisp. An
//     unpinned tag is an error, not a guess.
//   - spec.source sha256:<hex> (a module uploaded to the node) is
//     refused: Istio cannot fetch it. Push it to a registry first.
//   - spec.sha256, the sha256 of the module's bytes, goes into the
//     annotation wisp.dev/module-sha256, and spec.plainHTTP into
//     wisp.dev/plain-http: Istio's spec has no field with their meaning.
//   - spec.selector.functions with one name F becomes the workload label
//     serving.knative.dev/service=F, the label Knative Serving gives the
//     pods of its Service F, beside the selector's matchLabels. Several
//     names are refused: Istio's selector is one set of labels that must
//     all match, so it cannot pick several workloads by name, and a wider
//     selector would run the filter where it was not meant to.
//   - spec.pluginConfig must be a JSON object (Istio's is a
//     google.protobuf.Struct); a string, array or number is refused,
//     since Istio could not give the plugin that configuration.
//   - phase, priority, pluginName, vmConfig.env, failStrategy and
//     imagePullPolicy are copied; an empty phase and a priority of 0 are
//     left out (Istio's defaults), and so is type (HTTP is the default).
//
// f's spec must be valid (see Validate); errors are *apis.FieldError
// naming the Filter's fields, wrapped with the Filter's name.
func FilterToWasmPlugin(f *Filter, digest string) (*WasmPlugin, error) {
	wrap := func(err error) error {
		return fmt.Errorf("converting Filter %q to an Istio WasmPlugin: %w", f.Name, err)
	}
	s := &f.Spec
	if errs := s.validate().ViaField("spec"); errs != nil {
		return nil, wrap(errs)
	}
	wp := &WasmPlugin{
		TypeMeta: metav1.TypeMeta{APIVersion: WasmPluginAPIVersion, Kind: KindWasmPlugin},
		ObjectMeta: metav1.ObjectMeta{
			Name:        f.Name,
			Namespace:   f.Namespace,
			Labels:      maps.Clone(f.Labels),
			Annotations: maps.Clone(f.Annotations),
		},
	}
	// An annotation the Filter carries from an earlier import must not
	// contradict its spec.
	delete(wp.Annotations, AnnotationModuleSHA256)
	delete(wp.Annotations, AnnotationPlainHTTP)
	url, pinned, errs := pinnedURL(s.Source, digest)
	wp.Spec.URL = url
	wp.Spec.SHA256 = strings.TrimPrefix(pinned, "sha256:")
	if s.SHA256 != "" {
		setAnnotation(&wp.ObjectMeta, AnnotationModuleSHA256, s.SHA256)
	}
	if s.PlainHTTP {
		setAnnotation(&wp.ObjectMeta, AnnotationPlainHTTP, "true")
	}
	wp.Spec.ImagePullPolicy = s.ImagePullPolicy
	wp.Spec.PluginName = s.PluginName
	if len(s.PluginConfig) > 0 && string(s.PluginConfig) != "null" {
		if !isJSONObject(s.PluginConfig) {
			errs = errs.Also(&apis.FieldError{
				Message: "Istio's pluginConfig is a JSON object (google.protobuf.Struct), and this configuration is not one",
				Paths:   []string{"spec.pluginConfig"},
				Details: "Istio cannot give the plugin a string, array or number: have the plugin read an object",
			})
		}
		wp.Spec.PluginConfig = bytes.Clone(s.PluginConfig)
	}
	if s.Phase != PhaseUnspecified {
		wp.Spec.Phase = s.Phase
	}
	if s.Priority != 0 {
		p := s.Priority
		wp.Spec.Priority = &p
	}
	wp.Spec.FailStrategy = s.FailStrategy
	if s.VMConfig != nil && len(s.VMConfig.Env) > 0 {
		wp.Spec.VMConfig = &FilterVMConfig{Env: append([]FilterEnvVar(nil), s.VMConfig.Env...)}
	}
	sel, fe := workloadSelector(s.Selector)
	wp.Spec.Selector = sel
	if errs = errs.Also(fe); errs != nil {
		return nil, wrap(errs)
	}
	return wp, nil
}

// pinnedURL returns the WasmPlugin URL of a Filter source pinned to a
// manifest digest, and that digest.
func pinnedURL(source, digest string) (string, string, *apis.FieldError) {
	if digest != "" && !sha256RE.MatchString(digest) {
		return "", "", apis.ErrInvalidValue(digest, "spec.source", "the digest to pin the source to must be sha256: and 64 lower-case hex digits")
	}
	ref, ok := strings.CutPrefix(source, "oci://")
	if !ok { // validate has refused all but an uploaded module
		return "", "", &apis.FieldError{
			Message: "not supported by Istio: an uploaded module (" + source + ") lives on the wisp node only, and Istio cannot fetch it",
			Paths:   []string{"spec.source"},
			Details: "push it with 'wisp plugin push FILE.wasm REGISTRY/REPOSITORY:TAG' and set source: oci://REGISTRY/REPOSITORY:TAG",
		}
	}
	base, named, hasDigest := strings.Cut(ref, "@")
	switch {
	case hasDigest && digest != "" && named != digest:
		return "", "", apis.ErrInvalidValue(source, "spec.source", "the source is pinned to "+named+", not to "+digest)
	case hasDigest:
		digest = named
	case digest == "":
		return "", "", &apis.FieldError{
			Message: "the source " + source + " is a tag, which names no fixed module: the WasmPlugin's url must be pinned to a digest",
			Paths:   []string{"spec.source"},
			Details: "give the manifest digest the tag names ('wisp filter export --format istio' asks the registry), or pin the source: oci://REGISTRY/REPOSITORY@sha256:<hex>",
		}
	}
	return "oci://" + base + "@" + digest, digest, nil
}

// workloadSelector turns a Filter's selector into Istio's.
func workloadSelector(s *FilterSelector) (*WasmPluginSelector, *apis.FieldError) {
	if s == nil || len(s.Functions) == 0 && len(s.MatchLabels) == 0 {
		return nil, nil
	}
	labels := maps.Clone(s.MatchLabels)
	switch len(s.Functions) {
	case 0:
	case 1:
		fn := s.Functions[0]
		if v, ok := labels[serving.ServiceLabelKey]; ok && v != fn {
			return nil, &apis.FieldError{
				Message: fmt.Sprintf("the selector names function %q but requires label %s=%s: it selects nothing", fn, serving.ServiceLabelKey, v),
				Paths:   []string{"spec.selector.functions", "spec.selector.matchLabels"},
			}
		}
		if labels == nil {
			labels = map[string]string{}
		}
		labels[serving.ServiceLabelKey] = fn
	default:
		return nil, &apis.FieldError{
			Message: fmt.Sprintf("not supported by Istio: %d functions; Istio's selector is one set of workload labels that must all match, so it picks at most one function by name", len(s.Functions)),
			Paths:   []string{"spec.selector.functions"},
			Details: "make one Filter per function, or select the functions by a label they share (matchLabels)",
		}
	}
	return &WasmPluginSelector{MatchLabels: labels}, nil
}

// FromWasmPlugin converts an Istio WasmPlugin into the Filter of the same
// name, namespace, labels and annotations, which runs the same module with
// the same configuration in wisp's gateway. The status is ignored.
//
// Decisions, field by field:
//   - spec.url oci://R/P[:T][@D], or R/P[:T][@D] without a scheme (Istio's
//     default is oci://), becomes spec.source. With spec.sha256 set (Istio
//     checks it against the manifest digest) the source is pinned to that
//     digest, and a URL digest that differs is an error, as in Istio.
//   - spec.url http://, https:// and file:// are refused, naming spec.url:
//     wisp pulls filters from OCI registries only.
//   - The annotations wisp.dev/module-sha256 and wisp.dev/plain-http (see
//     FilterToWasmPlugin) become spec.sha256 and spec.plainHTTP.
//   - spec.selector.matchLabels becomes the selector's matchLabels, except
//     serving.knative.dev/service=F, which becomes functions [F]: wisp's
//     Functions carry no such label, and F is the Function that Knative's
//     Service F is.
//   - spec.targetRef, spec.targetRefs (Gateways, GatewayClasses, Services,
//     ServiceEntries) and spec.match (traffic direction and ports) are
//     refused: wisp attaches a filter to Functions by its selector, and
//     runs it on every request of the functions it selects. Dropping them
//     would run the filter where it was not meant to.
//   - spec.type NETWORK (a layer-4 plugin) is refused; HTTP and
//     UNSPECIFIED_PLUGIN_TYPE are what a Filter is.
//   - spec.pluginConfig must be a JSON object, as Istio's CRD says.
//   - spec.failStrategy FAIL_RELOAD becomes FAIL_CLOSE, which in wisp also
//     recreates a crashed VM for the next request.
//   - spec.imagePullPolicy UNSPECIFIED_POLICY (or none) becomes Always for
//     an unpinned tag "latest" and is left to wisp's default
//     (IfNotPresent) otherwise, which is Istio's default.
//   - spec.phase UNSPECIFIED_PHASE becomes the empty phase; priority,
//     pluginName and vmConfig.env are copied.
//   - spec.imagePullSecret is ignored: wisp's nodes pull with their own
//     registry credentials (Docker's config.json), not a Kubernetes
//     Secret; a registry that refuses them shows as PullFailed.
//   - spec.verificationKey is ignored, as Istio itself does (it is not
//     implemented there).
//   - Of the metadata, the name, namespace, labels and annotations are
//     kept, less kubectl's last-applied-configuration, which describes
//     the WasmPlugin, not the Filter.
//
// Errors are *apis.FieldError naming the WasmPlugin's fields, wrapped
// with its name. The Filter is neither defaulted nor validated: call its
// SetDefaults and Validate, as after Decode.
func FromWasmPlugin(wp *WasmPlugin) (*Filter, error) {
	s := &wp.Spec
	f := &Filter{
		TypeMeta: metav1.TypeMeta{APIVersion: APIVersion, Kind: KindFilter},
		ObjectMeta: metav1.ObjectMeta{
			Name:        wp.Name,
			Namespace:   wp.Namespace,
			Labels:      maps.Clone(wp.Labels),
			Annotations: maps.Clone(wp.Annotations),
		},
	}
	source, errs := sourceFromURL(s.URL, s.SHA256)
	f.Spec.Source = source
	if v, ok := f.Annotations[AnnotationModuleSHA256]; ok {
		if !filterSHA256RE.MatchString(v) {
			errs = errs.Also(apis.ErrInvalidValue(v, "metadata.annotations["+AnnotationModuleSHA256+"]", "want the module's sha256: 64 lower-case hex digits"))
		}
		f.Spec.SHA256 = v
		delete(f.Annotations, AnnotationModuleSHA256)
	}
	if v, ok := f.Annotations[AnnotationPlainHTTP]; ok {
		switch v {
		case "true":
			f.Spec.PlainHTTP = true
		case "false", "":
		default:
			errs = errs.Also(apis.ErrInvalidValue(v, "metadata.annotations["+AnnotationPlainHTTP+"]", `want "true" or "false"`))
		}
		delete(f.Annotations, AnnotationPlainHTTP)
	}
	// kubectl's record of the WasmPlugin it applied would be taken for
	// the Filter's own by a later kubectl apply of the Filter.
	delete(f.Annotations, corev1.LastAppliedConfigAnnotation)
	if len(f.Annotations) == 0 {
		f.Annotations = nil
	}

	switch p := s.ImagePullPolicy; p {
	case "", PullUnspecified:
		if _, tag, digest := splitOCIRef(strings.TrimPrefix(source, "oci://")); digest == "" && tag == "latest" {
			f.Spec.ImagePullPolicy = PullAlways
		}
	case PullIfNotPresent, PullAlways:
		f.Spec.ImagePullPolicy = p
	default:
		errs = errs.Also(apis.ErrInvalidValue(p, "spec.imagePullPolicy", fmt.Sprintf("want %s, %s or %s", PullIfNotPresent, PullAlways, PullUnspecified)))
	}
	if len(s.PluginConfig) > 0 && string(s.PluginConfig) != "null" {
		if !isJSONObject(s.PluginConfig) {
			errs = errs.Also(apis.ErrInvalidValue(string(s.PluginConfig), "spec.pluginConfig", "want a JSON object, as Istio's CRD does"))
		}
		f.Spec.PluginConfig = bytes.Clone(s.PluginConfig)
	}
	f.Spec.PluginName = s.PluginName
	switch s.Phase {
	case PhaseUnspecified, "":
	case PhaseAuthN, PhaseAuthZ, PhaseStats:
		f.Spec.Phase = s.Phase
	default:
		errs = errs.Also(apis.ErrInvalidValue(s.Phase, "spec.phase", fmt.Sprintf("want %s, %s, %s or %s", PhaseAuthN, PhaseAuthZ, PhaseStats, PhaseUnspecified)))
	}
	if s.Priority != nil {
		f.Spec.Priority = *s.Priority
	}
	switch s.FailStrategy {
	case FailReload:
		f.Spec.FailStrategy = FailClose
	case "", FailClose, FailOpen:
		f.Spec.FailStrategy = s.FailStrategy
	default:
		errs = errs.Also(apis.ErrInvalidValue(s.FailStrategy, "spec.failStrategy", fmt.Sprintf("want %s, %s or %s", FailClose, FailOpen, FailReload)))
	}
	if s.VMConfig != nil && len(s.VMConfig.Env) > 0 {
		f.Spec.VMConfig = &FilterVMConfig{Env: append([]FilterEnvVar(nil), s.VMConfig.Env...)}
	}
	if s.Selector != nil && len(s.Selector.MatchLabels) > 0 {
		sel := &FilterSelector{MatchLabels: maps.Clone(s.Selector.MatchLabels)}
		if fn, ok := sel.MatchLabels[serving.ServiceLabelKey]; ok {
			sel.Functions = []string{fn}
			delete(sel.MatchLabels, serving.ServiceLabelKey)
		}
		if len(sel.MatchLabels) == 0 {
			sel.MatchLabels = nil
		}
		f.Spec.Selector = sel
	}
	const attach = "wisp attaches a filter to Functions, by its selector"
	if s.TargetRef != nil {
		errs = errs.Also(unsupportedIstio("targetRef: "+attach, "spec.targetRef", "use selector.matchLabels; serving.knative.dev/service: NAME picks the function NAME"))
	}
	if len(s.TargetRefs) > 0 {
		errs = errs.Also(unsupportedIstio("targetRefs: "+attach, "spec.targetRefs", "use selector.matchLabels; serving.knative.dev/service: NAME picks the function NAME"))
	}
	if len(s.Match) > 0 {
		errs = errs.Also(unsupportedIstio("match: the gateway runs a filter on every request of the functions it selects, whatever the traffic's direction or port", "spec.match", "remove match, and narrow the selector instead"))
	}
	switch s.Type {
	case "", PluginTypeUnspecified, PluginTypeHTTP:
	case PluginTypeNetwork:
		errs = errs.Also(unsupportedIstio("type NETWORK: the gateway runs HTTP (layer-7) filters only", "spec.type", ""))
	default:
		errs = errs.Also(apis.ErrInvalidValue(s.Type, "spec.type", fmt.Sprintf("want %s (the default)", PluginTypeHTTP)))
	}
	if errs != nil {
		return nil, fmt.Errorf("converting Istio WasmPlugin %q: %w", wp.Name, errs)
	}
	return f, nil
}

// sourceFromURL returns the Filter source of a WasmPlugin's url and
// sha256.
func sourceFromURL(url, sha string) (string, *apis.FieldError) {
	if url == "" {
		return "", apis.ErrMissingField("spec.url")
	}
	scheme, ref, ok := strings.Cut(url, "://")
	if !ok {
		scheme, ref = "oci", url // Istio's default scheme
	}
	switch scheme {
	case "oci":
	case "http", "https", "file":
		return "", &apis.FieldError{
			Message: fmt.Sprintf("not supported by wisp: a %s:// URL; wisp pulls filters from OCI registries only", scheme),
			Paths:   []string{"spec.url"},
			Details: "push the module with 'wisp plugin push FILE.wasm REGISTRY/REPOSITORY:TAG' and set url: oci://REGISTRY/REPOSITORY:TAG, which Istio reads too",
		}
	default:
		return "", apis.ErrInvalidValue(url, "spec.url", "want oci://<registry>/<repository>[:<tag>][@sha256:<hex>]")
	}
	if !ociRefRE.MatchString(ref) {
		return "", apis.ErrInvalidValue(url, "spec.url", "want oci://<registry>/<repository>[:<tag>][@sha256:<hex>], with the registry")
	}
	if sha == "" {
		return "oci://" + ref, nil
	}
	if !filterSHA256RE.MatchString(sha) {
		return "", apis.ErrInvalidValue(sha, "spec.sha256", "want 64 lower-case hex digits")
	}
	switch _, _, digest := splitOCIRef(ref); digest {
	case "":
		return "oci://" + ref + "@sha256:" + sha, nil
	case "sha256:" + sha:
		return "oci://" + ref, nil
	default:
		return "", &apis.FieldError{
			Message: "the url names digest " + digest + " and sha256 another; Istio requires them equal",
			Paths:   []string{"spec.url", "spec.sha256"},
		}
	}
}

// splitOCIRef splits "registry/repository[:tag][@digest]" (no scheme);
// tag is "latest" when neither a tag nor a digest is named.
func splitOCIRef(ref string) (repository, tag, digest string) {
	ref, digest, _ = strings.Cut(ref, "@")
	slash := strings.LastIndex(ref, "/")
	repository = ref
	if i := strings.LastIndex(ref, ":"); i > slash {
		repository, tag = ref[:i], ref[i+1:]
	}
	if tag == "" && digest == "" {
		tag = "latest"
	}
	return repository, tag, digest
}

func isJSONObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}

func setAnnotation(m *metav1.ObjectMeta, k, v string) {
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[k] = v
}

func unsupportedIstio(what, path, details string) *apis.FieldError {
	return &apis.FieldError{Message: "not supported by wisp: " + what, Paths: []string{path}, Details: details}
}
