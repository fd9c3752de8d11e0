package adminclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/wisp-faas/wisp/api"
)

func filtersPath(ns string) string {
	if ns == "" {
		return prefix + "/filters"
	}
	return prefix + "/namespaces/" + url.PathEscape(ns) + "/filters"
}

// ListFilters lists the Filters of a namespace ("" = all); raw is the
// API's answer as it came.
func (c *Client) ListFilters(ctx context.Context, ns string) (list *api.FilterList, raw []byte, err error) {
	list = &api.FilterList{}
	raw, err = c.getJSON(ctx, filtersPath(ns), list)
	return list, raw, err
}

// GetFilter returns one Filter and the API's raw answer.
func (c *Client) GetFilter(ctx context.Context, ns, name string) (*api.Filter, []byte, error) {
	f := &api.Filter{}
	raw, err := c.getJSON(ctx, filtersPath(ns)+"/"+url.PathEscape(name), f)
	return f, raw, err
}

// CreateFilter creates a Filter.
func (c *Client) CreateFilter(ctx context.Context, f *api.Filter) (*api.Filter, error) {
	return c.sendFilter(ctx, http.MethodPost, filtersPath(f.Namespace), f)
}

// UpdateFilter replaces a Filter; with a resourceVersion set it fails with
// a conflict if the Filter changed since it was read.
func (c *Client) UpdateFilter(ctx context.Context, f *api.Filter) (*api.Filter, error) {
	return c.sendFilter(ctx, http.MethodPut, filtersPath(f.Namespace)+"/"+url.PathEscape(f.Name), f)
}

// DeleteFilter deletes a Filter.
func (c *Client) DeleteFilter(ctx context.Context, ns, name string) error {
	_, err := c.Do(ctx, http.MethodDelete, filtersPath(ns)+"/"+url.PathEscape(name), nil)
	return err
}

func (c *Client) sendFilter(ctx context.Context, method, path string, f *api.Filter) (*api.Filter, error) {
	b, err := c.Do(ctx, method, path, f)
	if err != nil {
		return nil, err
	}
	out := &api.Filter{}
	if err := json.Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("decoding answer of %s %s: %w", method, path, err)
	}
	return out, nil
}
