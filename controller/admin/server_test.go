package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/controller/store/storetest"
	"github.com/wisp-faas/wisp/functions/modules"
	"github.com/wisp-faas/wisp/internal/logs"
)

const token = "t0ken"

type apiClient struct {
	t   *testing.T
	url string
}

func newServer(t *testing.T) apiClient {
	mods, err := modules.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{
		Store: storetest.NewKV(t), Token: token, Log: slog.New(slog.DiscardHandler),
		Modules: mods, Logs: logs.New(10),
	})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return apiClient{t: t, url: srv.URL}
}

func (c apiClient) do(method, path, body string) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.url+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

const fnPath = Prefix + "/namespaces/default/functions"

func fnJSON(name, rv, env string) string {
	return `{"apiVersion":"wisp.dev/v1alpha1","kind":"Function","metadata":{"name":"` + name + `","resourceVersion":"` + rv +
		`"},"spec":{"template":{"spec":{"process":{"command":"/bin/srv"},"env":[{"name":"A","value":"` + env + `"}]}}}}`
}

func decodeStatus(t *testing.T, b []byte) metav1.Status {
	t.Helper()
	var st metav1.Status
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("not a Status: %s", b)
	}
	return st
}

func TestCRUDAndConflicts(t *testing.T) {
	c := newServer(t)
	code, b := c.do("POST", fnPath, fnJSON("hello", "", "1"))
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, b)
	}
	var created api.Function
	_ = json.Unmarshal(b, &created)
	if created.Generation != 1 || created.UID == "" || created.ResourceVersion == "" || created.Spec.Template.Spec.TimeoutSeconds == nil {
		t.Fatalf("create did not set server fields and defaults: %+v", created.ObjectMeta)
	}

	if code, b := c.do("POST", fnPath, fnJSON("hello", "", "1")); code != http.StatusConflict || decodeStatus(t, b).Reason != metav1.StatusReasonAlreadyExists {
		t.Fatalf("duplicate create: %d %s", code, b)
	}

	// Two writers read the same version; the second one loses with 409.
	rv := created.ResourceVersion
	code, b = c.do("PUT", fnPath+"/hello", fnJSON("hello", rv, "2"))
	if code != http.StatusOK {
		t.Fatalf("update: %d %s", code, b)
	}
	var updated api.Function
	_ = json.Unmarshal(b, &updated)
	if updated.Generation != 2 {
		t.Fatalf("spec change did not bump generation: %d", updated.Generation)
	}
	code, b = c.do("PUT", fnPath+"/hello", fnJSON("hello", rv, "3"))
	if st := decodeStatus(t, b); code != http.StatusConflict || st.Reason != metav1.StatusReasonConflict || st.Details.Causes[0].Field != "metadata.resourceVersion" {
		t.Fatalf("stale update: %d %s", code, b)
	}
	code, b = c.do("GET", fnPath+"/hello", "")
	var got api.Function
	_ = json.Unmarshal(b, &got)
	if code != 200 || got.Spec.Template.Spec.Env[0].Value != "2" {
		t.Fatalf("the losing write changed the object: %d %s", code, b)
	}

	if code, b := c.do("PUT", fnPath+"/other", fnJSON("hello", "", "1")); code != http.StatusBadRequest {
		t.Fatalf("name mismatch: %d %s", code, b)
	}
	if code, _ := c.do("DELETE", fnPath+"/hello", ""); code != http.StatusOK {
		t.Fatalf("delete: %d", code)
	}
	if code, b := c.do("GET", fnPath+"/hello", ""); code != http.StatusNotFound || !strings.Contains(decodeStatus(t, b).Message, "hello") {
		t.Fatalf("get deleted: %d %s", code, b)
	}
	if code, _ := c.do("DELETE", fnPath+"/hello", ""); code != http.StatusNotFound {
		t.Fatalf("second delete: %d", code)
	}
}

func TestInvalidBodiesNameTheField(t *testing.T) {
	c := newServer(t)
	cases := []struct {
		body  string
		code  int
		field string
	}{
		{`{"apiVersion":"wisp.dev/v1alpha1","kind":"Function","metadata":{"name":"x"},"spec":{"template":{"spec":{"process":{"command":"/a"}}},"traffic":[{"latestRevision":true,"percent":90}]}}`, 422, "spec.traffic"},
		{`{"apiVersion":"wisp.dev/v1alpha1","kind":"Function","metadata":{"name":"UPPER"},"spec":{"template":{"spec":{"process":{"command":"/a"}}}}}`, 422, "metadata.name"},
		{`{"apiVersion":"wisp.dev/v1alpha1","kind":"Function","metadata":{"name":"x","namespace":"other"},"spec":{"template":{"spec":{"process":{"command":"/a"}}}}}`, 400, "metadata.namespace"},
		{`{"apiVersion":"wisp.dev/v1alpha1","kind":"Function","metadata":{"name":"x"},"spec":{"bogus":1}}`, 400, ""},
		{`{not json`, 400, ""},
		{`{"apiVersion":"wisp.dev/v1alpha1","kind":"Function","metadata":{"name":"x"},"spec":{"template":{"spec":{"process":{"command":"/a"}}},"traffic":[{"revisionName":"x-00007","percent":100}]}}`, 422, "spec.traffic[0].revisionName"},
		{`{"apiVersion":"wisp.dev/v1alpha1","kind":"Function","metadata":{"name":"x"},"spec":{"template":{"spec":{"process":{"command":"/a"}}},"routes":[{"headers":[{"name":"x-env","exact":"a"}],"revisionName":"x-00002"}]}}`, 422, "spec.routes[0].revisionName"},
		{`{"apiVersion":"wisp.dev/v1alpha1","kind":"Function","metadata":{"name":"x"},"spec":{"template":{"spec":{"process":{"command":"/a"}}},"filters":[{"mirror":{"revisionName":"x-00003"}}]}}`, 422, "spec.filters[0].mirror.revisionName"},
		{`{"apiVersion":"wisp.dev/v1alpha1","kind":"Function","metadata":{"name":"x"},"spec":{"template":{"spec":{"process":{"command":"/a"}}},"filters":[{"rateLimit":{"requestsPerSecond":-1}}]}}`, 422, "spec.filters[0].rateLimit.requestsPerSecond"},
	}
	for _, tc := range cases {
		code, b := c.do("POST", fnPath, tc.body)
		st := decodeStatus(t, b)
		if code != tc.code {
			t.Errorf("%s: status %d (%s), want %d", tc.body, code, st.Message, tc.code)
			continue
		}
		if tc.field != "" && (st.Details == nil || st.Details.Causes[0].Field != tc.field) {
			t.Errorf("%s: causes %+v, want field %s", tc.body, st.Details, tc.field)
		}
	}
	// Nothing was stored by any of them.
	_, b := c.do("GET", fnPath, "")
	var list api.FunctionList
	_ = json.Unmarshal(b, &list)
	if len(list.Items) != 0 {
		t.Fatalf("invalid bodies stored %d functions", len(list.Items))
	}
}

func TestAuthAndHealth(t *testing.T) {
	c := newServer(t)
	for _, h := range []string{"", "Bearer wrong", token} {
		req, _ := http.NewRequest("GET", c.url+fnPath, nil)
		if h != "" {
			req.Header.Set("Authorization", h)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("Authorization %q: status %d, want 401", h, resp.StatusCode)
		}
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(c.url + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
}

func TestWatchStreamsAddedModifiedDeleted(t *testing.T) {
	c := newServer(t)
	c.do("POST", fnPath, fnJSON("before", "", "1"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", c.url+fnPath+"?watch=true", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	next := func() (string, string) {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("watch ended: %v", lines.Err())
		}
		var ev struct {
			Type   string
			Object api.Function
		}
		if err := json.Unmarshal(lines.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		return ev.Type, ev.Object.Name
	}
	if typ, name := next(); typ != "ADDED" || name != "before" {
		t.Fatalf("first event %s %s", typ, name)
	}
	c.do("POST", fnPath, fnJSON("after", "", "1"))
	if typ, name := next(); typ != "ADDED" || name != "after" {
		t.Fatalf("create event %s %s", typ, name)
	}
	c.do("PUT", fnPath+"/after", fnJSON("after", "", "2"))
	if typ, name := next(); typ != "MODIFIED" || name != "after" {
		t.Fatalf("update event %s %s", typ, name)
	}
	c.do("DELETE", fnPath+"/before", "")
	if typ, name := next(); typ != "DELETED" || name != "before" {
		t.Fatalf("delete event %s %s", typ, name)
	}
}

func TestModuleUpload(t *testing.T) {
	c := newServer(t)
	code, b := c.do("POST", Prefix+"/modules", "\x00asm\x01\x00\x00\x00")
	var ref ModuleRef
	_ = json.Unmarshal(b, &ref)
	if code != http.StatusCreated || !strings.HasPrefix(ref.Digest, "sha256:") || ref.Size != 8 {
		t.Fatalf("upload: %d %s", code, b)
	}
	if code, b := c.do("POST", Prefix+"/modules", "(module)"); code != http.StatusBadRequest || !strings.Contains(string(b), "WebAssembly") {
		t.Fatalf("text upload: %d %s", code, b)
	}
}

func TestRevisionsAreImmutableThroughTheAPI(t *testing.T) {
	c := newServer(t)
	if code, _ := c.do("POST", Prefix+"/namespaces/default/revisions", "{}"); code != http.StatusMethodNotAllowed {
		t.Fatalf("create revision: %d", code)
	}
	if code, _ := c.do("PUT", Prefix+"/namespaces/default/revisions/x-00001", "{}"); code != http.StatusMethodNotAllowed {
		t.Fatalf("update revision: %d", code)
	}
}
