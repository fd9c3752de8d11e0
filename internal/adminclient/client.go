// Package adminclient is the Go client of a wisp node's admin API, used
// by the CLI and the end-to-end tests. It finds the node the way the CLI
// documents: explicit URL and token, else WISP_SERVER and WISP_TOKEN, else
// what the local node wrote into its data dir.
package adminclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wisp-faas/wisp/api"
)

const prefix = "/apis/" + api.APIVersion

// DefaultAdminURL is where a node listens when nothing else is known.
const DefaultAdminURL = "http://127.0.0.1:8081"

// NodeFile is what a running node writes to <data-dir>/node.json.
type NodeFile struct {
	PID        int    `json:"pid"`
	Version    string `json:"version"`
	GatewayURL string `json:"gatewayURL"`
	AdminURL   string `json:"adminURL"`
	Domain     string `json:"domain"`
}

// Client talks to one node's admin API.
type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client
}

// Resolve builds a Client from explicit values, falling back to the
// environment (WISP_SERVER, WISP_TOKEN) and then to dataDir's node.json
// and token files.
func Resolve(server, token, dataDir string) (*Client, error) {
	if server == "" {
		server = os.Getenv("WISP_SERVER")
	}
	if token == "" {
		token = os.Getenv("WISP_TOKEN")
	}
	if server == "" {
		server = DefaultAdminURL
		if b, err := os.ReadFile(filepath.Join(dataDir, "node.json")); err == nil {
			var nf NodeFile
			if json.Unmarshal(b, &nf) == nil && nf.AdminURL != "" {
				server = nf.AdminURL
			}
		}
	}
	if token == "" {
		b, err := os.ReadFile(filepath.Join(dataDir, "token"))
		if err != nil {
			return nil, fmt.Errorf("no admin token: pass --token or set WISP_TOKEN, or run where %s holds the node's token (%v)", dataDir, err)
		}
		token = strings.TrimSpace(string(b))
	}
	if _, err := url.Parse(server); err != nil {
		return nil, fmt.Errorf("--server %q is not a URL: %w", server, err)
	}
	return &Client{BaseURL: strings.TrimSuffix(server, "/"), Token: token, HTTP: &http.Client{}}, nil
}

// Error is a failure answered by the API.
type Error struct {
	Code    int
	Reason  string
	Message string
	Fields  []string
}

func (e *Error) Error() string { return e.Message }

// IsNotFound reports whether err is an API 404.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == http.StatusNotFound
}

// IsConflict reports whether err is an API 409 caused by a stale resourceVersion.
func IsConflict(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == http.StatusConflict && e.Reason == string(metav1.StatusReasonConflict)
}

// Do sends a request and returns the raw response body of a 2xx answer.
func (c *Client) Do(ctx context.Context, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encoding request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the wisp node at %s (is 'wisp serve' running? --server sets another): %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, decodeError(resp.StatusCode, b)
	}
	return b, nil
}

// decodeError turns a non-2xx answer into an *Error.
func decodeError(code int, body []byte) error {
	var st metav1.Status
	e := &Error{Code: code, Message: strings.TrimSpace(string(body))}
	if json.Unmarshal(body, &st) == nil && st.Message != "" {
		e.Reason, e.Message = string(st.Reason), st.Message
		if st.Details != nil {
			for _, c := range st.Details.Causes {
				e.Fields = append(e.Fields, c.Field)
			}
		}
	}
	return e
}

func (c *Client) getJSON(ctx context.Context, path string, out any) ([]byte, error) {
	b, err := c.Do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("decoding answer of GET %s: %w", path, err)
	}
	return b, nil
}

// Info returns what the node says about itself.
func (c *Client) Info(ctx context.Context) (NodeFile, error) {
	var nf NodeFile
	_, err := c.getJSON(ctx, prefix+"/info", &nf)
	return nf, err
}

func functionsPath(ns string) string {
	if ns == "" {
		return prefix + "/functions"
	}
	return prefix + "/namespaces/" + url.PathEscape(ns) + "/functions"
}

func revisionsPath(ns string) string {
	if ns == "" {
		return prefix + "/revisions"
	}
	return prefix + "/namespaces/" + url.PathEscape(ns) + "/revisions"
}

// ListFunctions lists the Functions of a namespace ("" = all); raw is the
// API's answer as it came.
func (c *Client) ListFunctions(ctx context.Context, ns string) (list *api.FunctionList, raw []byte, err error) {
	list = &api.FunctionList{}
	raw, err = c.getJSON(ctx, functionsPath(ns), list)
	return list, raw, err
}

// GetFunction returns one Function and the API's raw answer.
func (c *Client) GetFunction(ctx context.Context, ns, name string) (*api.Function, []byte, error) {
	f := &api.Function{}
	raw, err := c.getJSON(ctx, functionsPath(ns)+"/"+url.PathEscape(name), f)
	return f, raw, err
}

// CreateFunction creates a Function.
func (c *Client) CreateFunction(ctx context.Context, f *api.Function) (*api.Function, error) {
	b, err := c.Do(ctx, http.MethodPost, functionsPath(f.Namespace), f)
	if err != nil {
		return nil, err
	}
	out := &api.Function{}
	return out, json.Unmarshal(b, out)
}

// UpdateFunction replaces a Function; with a resourceVersion set it fails
// with a conflict if the Function changed since it was read.
func (c *Client) UpdateFunction(ctx context.Context, f *api.Function) (*api.Function, error) {
	b, err := c.Do(ctx, http.MethodPut, functionsPath(f.Namespace)+"/"+url.PathEscape(f.Name), f)
	if err != nil {
		return nil, err
	}
	out := &api.Function{}
	return out, json.Unmarshal(b, out)
}

// DeleteFunction deletes a Function and, through the controller, its Revisions.
func (c *Client) DeleteFunction(ctx context.Context, ns, name string) error {
	_, err := c.Do(ctx, http.MethodDelete, functionsPath(ns)+"/"+url.PathEscape(name), nil)
	return err
}

// ListRevisions lists Revisions of a namespace ("" = all), of one
// Function when function is set.
func (c *Client) ListRevisions(ctx context.Context, ns, function string) (*api.RevisionList, []byte, error) {
	p := revisionsPath(ns)
	if function != "" {
		p += "?function=" + url.QueryEscape(function)
	}
	list := &api.RevisionList{}
	raw, err := c.getJSON(ctx, p, list)
	return list, raw, err
}

// GetRevision returns one Revision and the API's raw answer.
func (c *Client) GetRevision(ctx context.Context, ns, name string) (*api.Revision, []byte, error) {
	r := &api.Revision{}
	raw, err := c.getJSON(ctx, revisionsPath(ns)+"/"+url.PathEscape(name), r)
	return r, raw, err
}

// DeleteRevision deletes a Revision that no traffic goes to.
func (c *Client) DeleteRevision(ctx context.Context, ns, name string) error {
	_, err := c.Do(ctx, http.MethodDelete, revisionsPath(ns)+"/"+url.PathEscape(name), nil)
	return err
}

// WaitReady polls a Function until the controller has seen its latest
// generation and its Ready condition is True (nil) or False (an error
// with the condition's message), or ctx ends.
func (c *Client) WaitReady(ctx context.Context, ns, name string) (*api.Function, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		f, _, err := c.GetFunction(ctx, ns, name)
		if err != nil {
			return nil, err
		}
		if f.Status.ObservedGeneration >= f.Generation {
			if cond := f.Status.GetCondition(api.ConditionReady); cond != nil {
				switch {
				case cond.IsTrue():
					return f, nil
				case cond.IsFalse():
					return f, fmt.Errorf("function %s is not ready: %s: %s", name, cond.Reason, cond.Message)
				}
			}
		}
		select {
		case <-ctx.Done():
			msg := "no Ready condition yet"
			if cond := f.Status.GetCondition(api.ConditionReady); cond != nil && cond.Message != "" {
				msg = cond.Message
			}
			return f, fmt.Errorf("function %s did not become ready in time: %s", name, msg)
		case <-tick.C:
		}
	}
}

// IsAlreadyExists reports whether err is an API 409 for a name that is taken.
func IsAlreadyExists(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == http.StatusConflict && e.Reason == string(metav1.StatusReasonAlreadyExists)
}

// UploadModule sends a WebAssembly module to the node and returns the
// digest that names it.
func (c *Client) UploadModule(ctx context.Context, module io.Reader) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+prefix+"/modules", module)
	if err != nil {
		return "", fmt.Errorf("building upload: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Content-Type", "application/wasm")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return "", fmt.Errorf("cannot reach the wisp node at %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("reading upload answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return "", decodeError(resp.StatusCode, b)
	}
	var ref struct{ Digest string }
	if err := json.Unmarshal(b, &ref); err != nil || ref.Digest == "" {
		return "", fmt.Errorf("decoding upload answer %q: %v", b, err)
	}
	return ref.Digest, nil
}

// Stream sends a request and returns the body of a 2xx answer for the
// caller to read and close: for streaming answers such as logs -f.
func (c *Client) Stream(ctx context.Context, method, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, nil)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the wisp node at %s (is 'wisp serve' running?): %w", c.BaseURL, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return nil, decodeError(resp.StatusCode, b)
	}
	return resp.Body, nil
}
