// Package process is the runtime.Provider for Revisions whose source is an
// executable on the node (spec.process): a program that serves HTTP on
// 127.0.0.1:$PORT, as in Knative's runtime contract.
//
// It owns the life of those programs: checking the command (Prepare),
// starting one OS process per Instance in its own process group with a
// small, explicit environment, probing it until it answers, forwarding
// requests to it, capturing its output, restarting it with backoff when it
// crashes, and ending it (SIGTERM, a grace period, SIGKILL) when stopped.
// Another runtime reuses all of this for a program of its own through
// Options.Launcher: runtime/container runs `runc run` that way.
//
// It must not decide how many instances run (the autoscaler does), choose
// an instance for a request, retry or buffer requests (the activator does),
// or read or write the store. An Instance that is not ready answers 503
// rather than waiting; routing around it is the caller's job.
//
// The reasons behind the less obvious choices are in RATIONALE.md.
package process
