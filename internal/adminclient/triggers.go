package adminclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/wisp-faas/wisp/api"
)

func triggersPath(ns string) string {
	if ns == "" {
		return prefix + "/triggers"
	}
	return prefix + "/namespaces/" + url.PathEscape(ns) + "/triggers"
}

// ListTriggers lists the Triggers of a namespace ("" = all); raw is the
// API's answer as it came.
func (c *Client) ListTriggers(ctx context.Context, ns string) (*api.TriggerList, []byte, error) {
	list := &api.TriggerList{}
	raw, err := c.getJSON(ctx, triggersPath(ns), list)
	return list, raw, err
}

// GetTrigger returns one Trigger and the API's raw answer.
func (c *Client) GetTrigger(ctx context.Context, ns, name string) (*api.Trigger, []byte, error) {
	t := &api.Trigger{}
	raw, err := c.getJSON(ctx, triggersPath(ns)+"/"+url.PathEscape(name), t)
	return t, raw, err
}

// CreateTrigger creates a Trigger.
func (c *Client) CreateTrigger(ctx context.Context, t *api.Trigger) (*api.Trigger, error) {
	b, err := c.Do(ctx, http.MethodPost, triggersPath(t.Namespace), t)
	if err != nil {
		return nil, err
	}
	out := &api.Trigger{}
	return out, json.Unmarshal(b, out)
}

// UpdateTrigger replaces a Trigger's spec; with a resourceVersion set it
// fails with a conflict if the Trigger changed since it was read.
func (c *Client) UpdateTrigger(ctx context.Context, t *api.Trigger) (*api.Trigger, error) {
	b, err := c.Do(ctx, http.MethodPut, triggersPath(t.Namespace)+"/"+url.PathEscape(t.Name), t)
	if err != nil {
		return nil, err
	}
	out := &api.Trigger{}
	return out, json.Unmarshal(b, out)
}

// DeleteTrigger deletes a Trigger; the node deletes its consumer.
func (c *Client) DeleteTrigger(ctx context.Context, ns, name string) error {
	_, err := c.Do(ctx, http.MethodDelete, triggersPath(ns)+"/"+url.PathEscape(name), nil)
	return err
}
