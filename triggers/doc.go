// Package triggers delivers events from NATS JetStream to functions, and
// takes events and asynchronous calls in over HTTP.
//
// It owns, on one node:
//
//   - the Trigger manager: it watches Trigger resources in the store and
//     runs one durable pull consumer per Trigger, which delivers the
//     matching messages to the sink as CloudEvents over HTTP in binary
//     mode, at least once: 2xx acknowledges, 5xx, 429, 408 and timeouts
//     are retried with the Trigger's backoff (NakWithDelay), anything else
//     and exhausted retries go to the dead-letter subject. It writes each
//     Trigger's status (pending, redelivered, dead-lettered, last error)
//     every few seconds;
//   - event ingress: POST /events/<subject> publishes a CloudEvent to
//     JetStream;
//   - asynchronous invocation: POST /async/<namespace>/<name> stores the
//     request in JetStream, answers 202 with a call id, and a worker calls
//     the function with the same retry policy and posts the result to the
//     request's X-Callback-Url.
//
// Functions are called through the node's gateway over HTTP (path
// /fn/<namespace>/<name>/), so that a function at zero instances wakes up
// and the first events wait in the activator instead of failing.
//
// It must not reach into the activator or the runtimes, nor decide how
// functions scale: the gateway's URL is all it knows of them.
package triggers
