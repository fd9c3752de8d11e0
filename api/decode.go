package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"knative.dev/pkg/apis"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Object is a wisp resource: *Function, *Revision, *Filter or *Trigger.
type Object interface {
	metav1.Object
	GroupVersionKind() schema.GroupVersionKind
	SetDefaults()
	Validate() *apis.FieldError
}

var (
	_ Object = (*Function)(nil)
	_ Object = (*Revision)(nil)
	_ Object = (*Filter)(nil)
)

// The documents Decode accepts.
var (
	functionGVK = schema.GroupVersionKind{Group: Group, Version: Version, Kind: KindFunction}
	knativeGVK  = servingv1.SchemeGroupVersion.WithKind("Service")
	filterGVK   = schema.GroupVersionKind{Group: Group, Version: Version, Kind: KindFilter}
	// Istio's WasmPlugin decodes to the Filter FromWasmPlugin makes of it.
	wasmPluginGVK = schema.FromAPIVersionAndKind(WasmPluginAPIVersion, KindWasmPlugin)
)

// DecodeError is the error Decode returns: what is wrong with which
// document.
type DecodeError struct {
	// Document is the 1-based position of the document among the
	// non-empty documents of the input.
	Document int
	// Line is the input line (1-based) where the document starts.
	Line int
	// Err says what is wrong.
	Err error
}

// Error implements error.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("document %d (line %d): %v", e.Document, e.Line, e.Err)
}

// Unwrap returns Err.
func (e *DecodeError) Unwrap() error { return e.Err }

// Decode reads the resources in data: one or more YAML documents separated
// by "---" lines, or a JSON document. Documents holding nothing but
// comments are skipped. A wisp.dev/v1alpha1 Function decodes to a *Function,
// a wisp.dev/v1alpha1 Filter to a *Filter, a wisp.dev/v1alpha1 Trigger to a
// *Trigger, a serving.knative.dev/v1 Service to the *Function
// FromKnativeService converts it to, and an Istio
// extensions.istio.io/v1alpha1 WasmPlugin to the *Filter FromWasmPlugin
// converts it to; any other apiVersion and kind is an error.
//
// Decoding is strict: an unknown or duplicate field is an error, and field
// names are case-sensitive. Errors are *DecodeError and name the document,
// its first line and, where known, the field path or the input line.
//
// Decode neither defaults nor validates a Function or Filter (it does apply Knative's
// defaults and validation to a Knative Service): call SetDefaults and
// Validate on each result.
func Decode(data []byte) ([]Object, error) {
	var objs []Object
	for _, doc := range splitDocuments(data) {
		obj, err := decodeDocument(doc.text)
		if err != nil {
			return nil, &DecodeError{Document: doc.index, Line: doc.line, Err: err}
		}
		if obj != nil {
			objs = append(objs, obj)
		}
	}
	return objs, nil
}

// document is one non-empty document of Decode's input.
type document struct {
	index int // 1-based among non-empty documents
	line  int // first line with content, 1-based
	// text is the document preceded by as many newlines as input lines
	// precede it, so that parsers report input line numbers.
	text []byte
}

// splitDocuments splits data at YAML document separators ("---" alone on
// a line, optionally followed by a comment) and drops the documents that
// hold only blank and comment lines.
func splitDocuments(data []byte) []document {
	var docs []document
	var cur []string
	start := 1 // input line of cur[0]
	flush := func() {
		for i, l := range cur {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
				text := strings.Repeat("\n", start-1) + strings.Join(cur, "\n")
				docs = append(docs, document{index: len(docs) + 1, line: start + i, text: []byte(text)})
				break
			}
		}
	}
	lines := strings.Split(string(data), "\n")
	for n, l := range lines {
		if isSeparator(l) {
			flush()
			cur, start = nil, n+2
			continue
		}
		cur = append(cur, l)
	}
	flush()
	return docs
}

func isSeparator(line string) bool {
	rest, ok := strings.CutPrefix(strings.TrimRight(line, " \t\r"), "---")
	if !ok {
		return false
	}
	t := strings.TrimLeft(rest, " \t")
	return t == "" || (len(t) < len(rest) && strings.HasPrefix(t, "#"))
}

// decodeDocument decodes one document; it returns nil, nil for a null one.
func decodeDocument(text []byte) (Object, error) {
	js := bytes.TrimSpace(text)
	if len(js) == 0 || js[0] != '{' || !json.Valid(js) {
		var err error
		if js, err = yaml.YAMLToJSONStrict(text); err != nil {
			return nil, err
		}
	}
	if string(js) == "null" {
		return nil, nil
	}
	var tm metav1.TypeMeta
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(js, &tm); err != nil {
		return nil, fmt.Errorf("not a resource (an object with apiVersion and kind): %w", err)
	}
	switch gvk := tm.GroupVersionKind(); gvk {
	case functionGVK:
		f := new(Function)
		if err := unmarshalStrict(js, f); err != nil {
			return nil, err
		}
		return f, nil
	case triggerGVK:
		t := new(Trigger)
		if err := unmarshalStrict(js, t); err != nil {
			return nil, err
		}
		return t, nil
	case knativeGVK:
		svc := new(servingv1.Service)
		if err := unmarshalStrict(js, svc); err != nil {
			return nil, err
		}
		f, err := FromKnativeService(svc)
		if err != nil {
			return nil, err
		}
		return f, nil
	case filterGVK:
		f := new(Filter)
		if err := unmarshalStrict(js, f); err != nil {
			return nil, err
		}
		return f, nil
	case wasmPluginGVK:
		wp := new(WasmPlugin)
		if err := unmarshalStrict(js, wp); err != nil {
			return nil, err
		}
		f, err := FromWasmPlugin(wp)
		if err != nil {
			return nil, err
		}
		return f, nil
	default:
		return nil, fmt.Errorf("unsupported apiVersion %q kind %q: want apiVersion %q kind %q, %q or %q, apiVersion %q kind %q, or apiVersion %q kind %q",
			tm.APIVersion, tm.Kind, functionGVK.GroupVersion(), functionGVK.Kind, filterGVK.Kind, triggerGVK.Kind,
			knativeGVK.GroupVersion(), knativeGVK.Kind, wasmPluginGVK.GroupVersion(), wasmPluginGVK.Kind)
	}
}

// unmarshalStrict unmarshals js into v, failing on unknown and duplicate
// fields, which it names by path ("spec.template.spec.foo").
func unmarshalStrict(js []byte, v any) error {
	strict, err := sigsjson.UnmarshalStrict(js, v)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}
