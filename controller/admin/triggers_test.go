package admin

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/wisp-faas/wisp/api"
)

const trPath = Prefix + "/namespaces/default/triggers"

func trJSON(name, backoff string) string {
	return `{"apiVersion":"wisp.dev/v1alpha1","kind":"Trigger","metadata":{"name":"` + name +
		`"},"spec":{"source":{"subject":"orders.>"},"sink":{"ref":{"name":"fulfil"}},"delivery":{"backoffPolicy":"` + backoff + `"}}}`
}

// TestTriggerLifecycle creates, reads, updates, lists and deletes a
// Trigger, with the defaults applied and the status kept by the node.
func TestTriggerLifecycle(t *testing.T) {
	c := newServer(t)
	code, b := c.do(http.MethodPost, trPath, trJSON("orders", "linear"))
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, b)
	}
	var tr api.Trigger
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}
	if tr.Spec.Source.Stream != "ORDERS" || *tr.Spec.Delivery.Retry != api.DefaultRetry || tr.Generation != 1 || tr.UID == "" {
		t.Fatalf("created without defaults: %s", b)
	}
	if code, b := c.do(http.MethodPost, trPath, trJSON("orders", "linear")); code != http.StatusConflict {
		t.Fatalf("second create: %d %s", code, b)
	}
	code, b = c.do(http.MethodPut, trPath+"/orders", trJSON("orders", "exponential"))
	if err := json.Unmarshal(b, &tr); code != http.StatusOK || err != nil || tr.Generation != 2 || tr.Spec.Delivery.BackoffPolicy != "exponential" {
		t.Fatalf("update: %d %s", code, b)
	}
	code, b = c.do(http.MethodGet, Prefix+"/triggers", "")
	var list api.TriggerList
	if err := json.Unmarshal(b, &list); code != http.StatusOK || err != nil || len(list.Items) != 1 {
		t.Fatalf("list: %d %s", code, b)
	}
	if code, b := c.do(http.MethodDelete, trPath+"/orders", ""); code != http.StatusOK {
		t.Fatalf("delete: %d %s", code, b)
	}
	if code, _ := c.do(http.MethodGet, trPath+"/orders", ""); code != http.StatusNotFound {
		t.Fatalf("get after delete: %d", code)
	}
}

// TestTriggerInvalid answers 422 naming the field at fault.
func TestTriggerInvalid(t *testing.T) {
	c := newServer(t)
	code, b := c.do(http.MethodPost, trPath, trJSON("orders", "random"))
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("invalid: %d %s", code, b)
	}
	st := decodeStatus(t, b)
	if st.Details == nil || len(st.Details.Causes) != 1 || st.Details.Causes[0].Field != "spec.delivery.backoffPolicy" {
		t.Fatalf("status %+v", st)
	}
}
