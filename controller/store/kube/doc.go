// Package kube is a store.Store on a Kubernetes API server: every Kind is
// a CustomResourceDefinition of group wisp.dev (config/crd, generated from
// package api), an object's resourceVersion is its store revision, and
// namespaces are Kubernetes namespaces.
//
// It owns the mapping between the store's JSON documents and custom
// resources, and nothing else: like every Store it must not default,
// validate or react to what it stores.
//
// # RATIONALE
//
// Documents in, documents out. Values are the JSON of wisp's objects; the
// store sets apiVersion, kind, namespace and name from the key, sends
// metadata.resourceVersion as the compare-and-swap precondition, and hands
// back what the apiserver stored, server-set metadata (uid,
// creationTimestamp, generation) included, without resourceVersion (the
// entry's revision) or managedFields (noise to every reader). Writes
// return the stored object (store.EntryWriter), so callers see the
// generation the apiserver assigned without reading again.
//
// Status apart. Every CRD has the status subresource, as Kubernetes
// objects do: Update writes metadata and spec and leaves the stored
// status; UpdateStatus writes only the status. Two writers (a user with
// kubectl, the controller) thus never overwrite each other's half.
//
// Watches never end on their own. A watch lists (in pages), emits the
// objects in resourceVersion order, then Synced, then follows the
// apiserver's watch from the list's resourceVersion. When the watch
// breaks (timeout, apiserver restart, network) it resumes from the last
// resourceVersion seen; when that has expired (410 Gone) it lists again
// and emits the difference with what it had sent: a Put for every object
// that changed, a Delete for every object that went. Between the
// apiserver and the reader sits an unbounded queue, so that a slow reader
// never makes the apiserver drop the watch as unresponsive: it holds up
// only itself, as with the KV store.
//
// Errors say what to do: a missing CRD names `kubectl apply -k config/`,
// a missing namespace names `kubectl create namespace`, a refusal by RBAC
// carries the apiserver's message (which names the verb, the resource and
// the user) and matches store.ErrForbidden.
package kube
