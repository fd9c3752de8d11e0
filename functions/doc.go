// Package functions holds what users build functions with: example
// functions (functions/examples), and later the guest SDKs and the
// packaging tools (build, OCI push and pull).
package functions
