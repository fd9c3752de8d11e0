// Package store owns wisp's durable state: resources kept as JSON
// documents by Kind, namespace and name, with compare-and-swap updates
// (the store revision is the object's resourceVersion) and watches that
// list what exists and then stream every change in order.
//
// Store is the seam. KV implements it on NATS JetStream key-value buckets,
// either on the server that StartServer embeds in the node (file storage
// under the data directory, in-process connections, no socket unless
// asked) or on an external NATS reached with Connect. A Kubernetes
// implementation on CRDs will sit behind the same interface in cluster
// mode. Typed adds the JSON and resourceVersion plumbing for objects with
// Kubernetes metadata, so callers handle *api.Function and not bytes.
// Package storetest holds the behaviour every Store must show, runnable
// against any implementation, and a helper for tests that need a store.
//
// The package must not hold business rules. It does not default,
// validate or convert resources beyond refusing names that are not DNS
// labels (they form the keys); that lives in api/. It does not react to
// changes; reconciliation lives in controller/. It sets no metadata other
// than resourceVersion (no uid, generation or timestamps).
//
// # RATIONALE
//
// One bucket per Kind, keyed "<namespace>.<name>": a listing is one
// watch over "<namespace>.*" (last value per key). History is 8, not 1:
// JetStream drops a key's older messages even before a running watch has
// delivered them, so with History 1 a delete followed at once by a
// re-create reached watchers as a plain Put in about one test run in
// twenty. Revisions are the bucket's stream sequence numbers, so they grow
// per Kind (not globally, unlike Kubernetes) and survive restarts.
//
// Deletes purge: the key's kept revisions go and a marker stays, which
// watches report as Delete. jetstream's Create writes over a marker, so a
// deleted name can be created again. Markers stay, one small message per
// deleted name.
//
// Update and Delete read the key before writing. That costs a round trip,
// but lets them answer ErrNotFound and ErrConflict precisely and keeps an
// update naming a delete marker's revision from resurrecting the object.
//
// Watches never drop events: a slow reader holds up its own watch (NATS
// flow control then holds up the server), nothing else.
//
// nats-server does not lock its store directory: two servers on one
// directory both start and write the same files. StartServer therefore
// holds a flock on DataDir/nats.lock and fails with a clear error.
package store
