// Package functions holds what users build and ship functions with: the
// Go guest SDK (functions/sdk/go/wisp), example functions
// (functions/examples), the content-addressed module store
// (functions/modules) and OCI distribution with ORAS (functions/oci).
package functions
