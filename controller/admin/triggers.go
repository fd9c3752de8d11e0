package admin

import (
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/controller/store"
)

// registerTriggers serves Triggers as Functions are served; the node's
// trigger manager writes their status.
func (s *Server) registerTriggers(m *http.ServeMux) {
	(&resource[api.Trigger, *api.Trigger]{
		s: s, kind: api.KindTrigger, objs: store.NewTyped[api.Trigger](s.opts.Store, store.Triggers),
		list: func(items []*api.Trigger) any {
			l := api.TriggerList{TypeMeta: metav1.TypeMeta{APIVersion: api.APIVersion, Kind: "TriggerList"}, Items: make([]api.Trigger, 0, len(items))}
			for _, t := range items {
				l.Items = append(l.Items, *t)
			}
			return l
		},
		status: func(t *api.Trigger) any { return &t.Status },
		spec:   func(t *api.Trigger) any { return t.Spec },
	}).register(m, "triggers")
}
