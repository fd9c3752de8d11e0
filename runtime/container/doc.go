// Package container is the runtime.Provider for Revisions whose source is
// an OCI image (spec.container), as a Knative Service's container is: it
// runs the image under runc and forwards requests to it over HTTP.
//
// It owns the images and the containers of a node. Prepare pulls an image
// with go-containerregistry (credentials from the Docker config), pins it
// to its digest and unpacks its layers once per digest into a cache under
// Options.Dir, refusing archive entries that would write outside it.
// Start writes one OCI bundle per container (the cached rootfs read-only,
// the node's network, its own PID, mount, IPC and UTS namespaces, a
// reduced capability set, a seccomp filter, a cgroup under
// Options.CgroupParent) and has runtime/process run `runc run` in the
// foreground as the instance's process: the free port, $PORT and the
// K_* variables, readiness probing, the reverse proxy, restarts with
// backoff, graceful Stop and output capture are all runtime/process's.
// When a container ends, its runc state, cgroups and bundle are deleted.
//
// It needs root and runc (Debian's runc package); rootless runc is not
// supported. It must not decide how many instances run, choose an
// instance for a request or read the store, like every Provider.
//
// The reasons behind the less obvious choices are in RATIONALE.md.
package container
