package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Hash identifies what a template runs: the first 16 hex digits of the
// SHA-256 of the template's JSON after defaults are applied (to a copy), so
// that spelling a default out does not change it. The controller cuts a new
// Revision when a Function's template hash differs from its latest
// Revision's AnnotationTemplateHash.
//
// Everything in the template counts: the spec, the metadata's labels and
// annotations (autoscaling annotations change how a Revision runs) and the
// metadata's name (naming the next Revision asks for a new one, as in
// Knative). JSON marshals struct fields in declaration order and map keys
// sorted, so the hash is stable, and a new optional (omitempty) field leaves
// the hashes of templates that do not use it unchanged.
func (t *RevisionTemplate) Hash() string {
	c := t.DeepCopy()
	c.Spec.setDefaults()
	sum := sha256.Sum256(mustMarshal(c))
	return hex.EncodeToString(sum[:8])
}

// RevisionName is the name of a Function's number-th Revision when the
// template names none: "<function>-00001".
func RevisionName(function string, number int) string {
	return fmt.Sprintf("%s-%05d", function, number)
}

// NewRevision snapshots f's template, with defaults applied, into a new
// Revision named name (see RevisionName) in f's namespace. The Revision
// carries the template's labels and annotations plus LabelFunction,
// LabelRevisionNumber (number) and AnnotationTemplateHash. It shares no
// memory with f. It has no owner reference: LabelFunction links it to f.
func NewRevision(f *Function, name string, number int) *Revision {
	t := f.Spec.Template.DeepCopy()
	r := &Revision{
		TypeMeta: metav1.TypeMeta{APIVersion: APIVersion, Kind: KindRevision},
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   f.Namespace,
			Labels:      make(map[string]string, len(t.Metadata.Labels)+2),
			Annotations: make(map[string]string, len(t.Metadata.Annotations)+1),
		},
		Spec: t.Spec,
	}
	maps.Copy(r.Labels, t.Metadata.Labels)
	maps.Copy(r.Annotations, t.Metadata.Annotations)
	r.Labels[LabelFunction] = f.Name
	r.Labels[LabelRevisionNumber] = strconv.Itoa(number)
	r.Annotations[AnnotationTemplateHash] = t.Hash()
	r.SetDefaults()
	return r
}

// mustMarshal marshals the plain structs of this package, which cannot fail:
// they hold only strings, integers, booleans, maps of strings and slices.
func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("api: marshal %T: %v", v, err))
	}
	return b
}
