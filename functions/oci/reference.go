package oci

import (
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/registry"
)

// defaultTag is the tag of a reference that names neither a tag nor a
// digest, as in Docker and Istio.
const defaultTag = "latest"

// Reference names a module in an OCI registry.
type Reference struct {
	// Registry is host[:port], e.g. "ghcr.io" or "127.0.0.1:5000".
	Registry string
	// Repository is the path inside the registry, e.g. "acme/filters/auth".
	Repository string
	// Tag is the tag, "latest" when the reference named neither a tag nor a
	// digest. It may be set together with Digest; the digest then wins.
	Tag string
	// Digest is the manifest digest, "sha256:<64 hex>", or empty.
	Digest string
}

// ParseReference parses "oci://host[:port]/repository[:tag][@sha256:<hex>]",
// with or without the oci:// scheme. A reference with neither tag nor
// digest gets the tag "latest".
func ParseReference(s string) (Reference, error) {
	const want = "want oci://host[:port]/repository[:tag|@sha256:<digest>]"
	rest := s
	if scheme, after, ok := strings.Cut(s, "://"); ok {
		if scheme != "oci" {
			return Reference{}, fmt.Errorf("reference %q: scheme %s:// is not an OCI registry; %s", s, scheme, want)
		}
		rest = after
	}
	host, path, ok := strings.Cut(rest, "/")
	if !ok || host == "" || path == "" {
		return Reference{}, fmt.Errorf("reference %q: the registry host and the repository are both required (for Docker Hub write docker.io/...); %s", s, want)
	}
	repo, dgst, hasDigest := strings.Cut(path, "@")
	repo, tag, hasTag := strings.Cut(repo, ":")
	ref := Reference{Registry: host, Repository: repo, Tag: tag}
	check := registry.Reference{Registry: host, Repository: repo, Reference: tag}
	if err := check.ValidateRegistry(); err != nil {
		return Reference{}, fmt.Errorf("reference %q: registry %q is not a valid host[:port]", s, host)
	}
	if err := check.ValidateRepository(); err != nil {
		return Reference{}, fmt.Errorf("reference %q: repository %q is not valid (lower-case letters, digits, and . _ - / separators)", s, repo)
	}
	if hasTag {
		if err := check.ValidateReferenceAsTag(); err != nil {
			return Reference{}, fmt.Errorf("reference %q: tag %q is not valid (up to 128 of letters, digits, _ . -, not starting with . or -)", s, tag)
		}
	}
	if hasDigest {
		d, err := digest.Parse(dgst)
		if err != nil || d.Algorithm() != digest.SHA256 {
			return Reference{}, fmt.Errorf("reference %q: digest %q is not valid; want sha256:<64 lower-case hex digits>", s, dgst)
		}
		ref.Digest = d.String()
	}
	if !hasTag && !hasDigest {
		ref.Tag = defaultTag
	}
	return ref, nil
}

// String formats the reference as host/repository[:tag][@digest], without
// the oci:// scheme.
func (r Reference) String() string {
	var b strings.Builder
	b.WriteString(r.Registry)
	b.WriteByte('/')
	b.WriteString(r.Repository)
	if r.Tag != "" {
		b.WriteByte(':')
		b.WriteString(r.Tag)
	}
	if r.Digest != "" {
		b.WriteByte('@')
		b.WriteString(r.Digest)
	}
	return b.String()
}

// repository returns host/repository.
func (r Reference) repository() string { return r.Registry + "/" + r.Repository }

// reference is what the registry API is asked for: the digest if there is
// one, else the tag.
func (r Reference) reference() string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.Tag
}
