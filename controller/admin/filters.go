package admin

import (
	"fmt"
	"net/http"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/controller/store"
)

// registerFilters serves Filters as Functions are served. The API stores
// what it is given and never pulls a module: the node's filter manager
// loads filters and writes their status.
func (s *Server) registerFilters(m *http.ServeMux) {
	(&resource[api.Filter, *api.Filter]{
		s: s, kind: api.KindFilter, objs: store.NewTyped[api.Filter](s.opts.Store, store.Filters),
		list: func(items []*api.Filter) any {
			l := api.FilterList{TypeMeta: metav1.TypeMeta{APIVersion: api.APIVersion, Kind: "FilterList"}, Items: make([]api.Filter, 0, len(items))}
			for _, f := range items {
				l.Items = append(l.Items, *f)
			}
			return l
		},
		status: func(f *api.Filter) any { return &f.Status },
		spec:   func(f *api.Filter) any { return f.Spec },
		created: func(f *api.Filter) {
			f.Status.MarkUnknown(api.ReasonFilterPending, "no gateway has loaded the filter yet")
		},
		admit: s.admitFilter,
	}).register(m, "filters")
}

// admitFilter checks that an uploaded module a Filter names is on this
// node. On refusal it has answered.
func (s *Server) admitFilter(w http.ResponseWriter, _ *http.Request, f *api.Filter) bool {
	if src := f.Spec.Source; strings.HasPrefix(src, "sha256:") && s.opts.Modules != nil && !s.opts.Modules.Has(src) {
		writeInvalid(w, api.KindFilter, f.Name, &apis.FieldError{
			Message: fmt.Sprintf("module %s is not on this node", src),
			Paths:   []string{"spec.source"},
			Details: "upload it first (POST " + Prefix + "/modules, or wisp filter create --source FILE)",
		})
		return false
	}
	return true
}
