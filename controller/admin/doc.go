// Package admin is the node's admin API: REST and JSON over HTTP with a
// bearer token, in Kubernetes' URL and object shapes
// (/apis/wisp.dev/v1alpha1/namespaces/<ns>/functions/<name>), with
// list, get, create, update, delete and ?watch=true streaming for each
// kind, plus /healthz, /readyz and /metrics.
//
// It owns the request rules of the API: authentication, decoding,
// defaulting and validating through package api, server-set metadata
// (uid, generation, timestamps) and mapping store errors to 404/409/422.
// It must not reconcile anything: the controller reacts to what it
// stores.
package admin
