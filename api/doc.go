// Package api defines wisp's resources: Function, Revision, Filter (a
// proxy-wasm module in the gateway's filter chain, shaped after Istio's
// WasmPlugin) and their defaults, validation, conversion from Knative
// serving.knative.dev/v1 Service manifests, and conversion both ways between
// Filters and Istio extensions.istio.io/v1alpha1 WasmPlugins.
//
// The types are plain Go structs in Kubernetes object shape (apiVersion,
// kind, metadata, spec, status) so that the same documents can later be
// served as CustomResourceDefinitions. Validation errors are
// knative.dev/pkg/apis.FieldError values, so every error names the field
// path that is wrong.
//
// The life of a document: Decode reads YAML or JSON (converting Knative
// Services with FromKnativeService and Istio WasmPlugins with
// FromWasmPlugin), SetDefaults fills in what was left
// out, Validate (or ValidateUpdate) checks it, RevisionTemplate.Hash tells
// the controller when a template changed, and NewRevision snapshots it into
// an immutable Revision. The status types carry Knative-style conditions
// (Ready and its dependents) with Mark* helpers.
//
// This package owns the shape and the rules of the resources. It must not
// import any other wisp package, talk to the store, or start anything.
// The kubebuilder markers below and on the types generate the
// CustomResourceDefinitions in config/crd (make generate).
//
// +groupName=wisp.dev
// +versionName=v1alpha1
package api
