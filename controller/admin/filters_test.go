package admin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wisp-faas/wisp/api"
)

const filterPath = Prefix + "/namespaces/default/filters"

// filterJSON is a Filter document with the given resourceVersion and phase.
func filterJSON(name, rv, phase string) string {
	return `{"apiVersion":"wisp.dev/v1alpha1","kind":"Filter","metadata":{"name":"` + name + `","resourceVersion":"` + rv +
		`"},"spec":{"source":"oci://127.0.0.1:5000/filters/auth:v1","phase":"` + phase + `","pluginConfig":{"header":"x-key"}}}`
}

func decodeFilter(t *testing.T, b []byte) api.Filter {
	t.Helper()
	var f api.Filter
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("not a Filter: %s", b)
	}
	return f
}

func TestFilterCRUDAndConflicts(t *testing.T) {
	c := newServer(t)
	code, b := c.do("POST", filterPath, filterJSON("auth", "", "AUTHN"))
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, b)
	}
	created := decodeFilter(t, b)
	if created.Generation != 1 || created.UID == "" || created.ResourceVersion == "" {
		t.Fatalf("create did not set server fields: %+v", created.ObjectMeta)
	}
	if created.Spec.FailStrategy != api.FailClose || created.Spec.ImagePullPolicy != api.PullIfNotPresent {
		t.Errorf("defaults not applied: %+v", created.Spec)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, created.Spec.PluginConfig); err != nil || compact.String() != `{"header":"x-key"}` {
		t.Errorf("pluginConfig stored as %s", created.Spec.PluginConfig)
	}
	if cond := created.Status.GetCondition(api.ConditionReady); cond == nil || !cond.IsUnknown() || cond.Reason != api.ReasonFilterPending {
		t.Errorf("a new filter's Ready = %+v, want Unknown/Pending", cond)
	}

	if code, b := c.do("POST", filterPath, filterJSON("auth", "", "")); code != http.StatusConflict || decodeStatus(t, b).Reason != metav1.StatusReasonAlreadyExists {
		t.Fatalf("duplicate create: %d %s", code, b)
	}

	// Two writers read the same version; the second one loses with 409.
	rv := created.ResourceVersion
	code, b = c.do("PUT", filterPath+"/auth", filterJSON("auth", rv, "AUTHZ"))
	if code != http.StatusOK {
		t.Fatalf("update: %d %s", code, b)
	}
	if updated := decodeFilter(t, b); updated.Generation != 2 || updated.Spec.Phase != api.PhaseAuthZ || updated.Status.GetCondition(api.ConditionReady) == nil {
		t.Fatalf("update: generation %d phase %s status %+v; want 2, AUTHZ, status kept", updated.Generation, updated.Spec.Phase, updated.Status)
	}
	code, b = c.do("PUT", filterPath+"/auth", filterJSON("auth", rv, "STATS"))
	if st := decodeStatus(t, b); code != http.StatusConflict || st.Reason != metav1.StatusReasonConflict || st.Details.Causes[0].Field != "metadata.resourceVersion" {
		t.Fatalf("stale update: %d %s", code, b)
	}
	code, b = c.do("GET", filterPath+"/auth", "")
	if got := decodeFilter(t, b); code != http.StatusOK || got.Spec.Phase != api.PhaseAuthZ {
		t.Fatalf("the losing write changed the filter: %d %s", code, b)
	}

	// Listed in its namespace and across namespaces, not in another.
	for path, want := range map[string]int{filterPath: 1, Prefix + "/filters": 1, Prefix + "/namespaces/other/filters": 0} {
		code, b := c.do("GET", path, "")
		var list api.FilterList
		if err := json.Unmarshal(b, &list); err != nil || code != http.StatusOK || len(list.Items) != want || list.Kind != "FilterList" {
			t.Errorf("GET %s: %d, %d items (%s); want %d", path, code, len(list.Items), b, want)
		}
	}

	if code, b := c.do("PUT", filterPath+"/other", filterJSON("auth", "", "")); code != http.StatusBadRequest {
		t.Fatalf("name mismatch: %d %s", code, b)
	}
	if code, b := c.do("DELETE", filterPath+"/auth?resourceVersion="+rv, ""); code != http.StatusConflict {
		t.Fatalf("delete at a stale version: %d %s", code, b)
	}
	if code, _ := c.do("DELETE", filterPath+"/auth", ""); code != http.StatusOK {
		t.Fatalf("delete: %d", code)
	}
	if code, b := c.do("GET", filterPath+"/auth", ""); code != http.StatusNotFound || !strings.Contains(decodeStatus(t, b).Message, `filter "auth" not found`) {
		t.Fatalf("get deleted: %d %s", code, b)
	}
}

func TestFilterInvalidBodiesNameTheField(t *testing.T) {
	c := newServer(t)
	spec := func(s string) string {
		return `{"apiVersion":"wisp.dev/v1alpha1","kind":"Filter","metadata":{"name":"f"},"spec":{` + s + `}}`
	}
	missing := "sha256:" + strings.Repeat("0", 64)
	cases := []struct {
		body   string
		code   int
		fields []string
		says   string
	}{
		{spec(`"source":"oci://r.io/a:v1","phase":"AUTH"`), 422, []string{"spec.phase"}, "AUTHN"},
		{spec(`"source":"oci://r.io/a:v1","failStrategy":"open"`), 422, []string{"spec.failStrategy"}, "FAIL_OPEN"},
		{spec(`"source":"oci://r.io/a:v1","sha256":"abc"`), 422, []string{"spec.sha256"}, "64 lower-case hex"},
		{spec(`"source":"./auth.wasm"`), 422, []string{"spec.source"}, "oci://"},
		{spec(`"source":"oci://r.io/a:v1","selector":{"functions":["Bad_Name"]}}`), 422, []string{"spec.selector.functions[0]"}, "invalid value"},
		{spec(`"source":"` + missing + `"`), 422, []string{"spec.source"}, "not on this node"},
		{spec(`"source":"oci://r.io/a:v1","priority":"high"`), 400, nil, "priority"},
		{spec(`"source":"oci://r.io/a:v1","bogus":1`), 400, nil, `unknown field "spec.bogus"`},
		{fnJSON("x", "", "1"), 400, nil, "send a Filter"},
	}
	for _, tc := range cases {
		code, b := c.do("POST", filterPath, tc.body)
		st := decodeStatus(t, b)
		if code != tc.code || !strings.Contains(st.Message, tc.says) {
			t.Errorf("%s: %d %q, want %d saying %q", tc.body, code, st.Message, tc.code, tc.says)
			continue
		}
		var fields []string
		if st.Details != nil {
			for _, cause := range st.Details.Causes {
				fields = append(fields, cause.Field)
			}
		}
		for _, f := range tc.fields {
			if !slices.Contains(fields, f) {
				t.Errorf("%s: causes name %q, want %q", tc.body, fields, f)
			}
		}
	}
	_, b := c.do("GET", filterPath, "")
	var list api.FilterList
	if err := json.Unmarshal(b, &list); err != nil || len(list.Items) != 0 {
		t.Fatalf("invalid bodies stored filters: %s", b)
	}
}

func TestFilterFromUploadedModule(t *testing.T) {
	c := newServer(t)
	code, b := c.do("POST", Prefix+"/modules", "\x00asm\x01\x00\x00\x00")
	var ref ModuleRef
	if err := json.Unmarshal(b, &ref); err != nil || code != http.StatusCreated {
		t.Fatalf("upload: %d %s", code, b)
	}
	body := `{"apiVersion":"wisp.dev/v1alpha1","kind":"Filter","metadata":{"name":"local"},"spec":{"source":"` + ref.Digest + `"}}`
	if code, b := c.do("POST", filterPath, body); code != http.StatusCreated {
		t.Fatalf("create from an uploaded module: %d %s", code, b)
	}
}

func TestFilterWatch(t *testing.T) {
	c := newServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", c.url+filterPath+"?watch=true", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	next := func() (string, api.Filter) {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("watch ended: %v", lines.Err())
		}
		var ev struct {
			Type   string
			Object api.Filter
		}
		if err := json.Unmarshal(lines.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		return ev.Type, ev.Object
	}
	c.do("POST", filterPath, filterJSON("auth", "", "AUTHN"))
	if typ, f := next(); typ != "ADDED" || f.Name != "auth" || f.Spec.Phase != api.PhaseAuthN {
		t.Fatalf("create event %s %+v", typ, f)
	}
	c.do("PUT", filterPath+"/auth", filterJSON("auth", "", "STATS"))
	if typ, f := next(); typ != "MODIFIED" || f.Spec.Phase != api.PhaseStats {
		t.Fatalf("update event %s %+v", typ, f)
	}
	c.do("DELETE", filterPath+"/auth", "")
	if typ, f := next(); typ != "DELETED" || f.Name != "auth" {
		t.Fatalf("delete event %s %+v", typ, f)
	}
}
