package oci

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/wisp-faas/wisp/functions/modules"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/errcode"
	"oras.land/oras-go/v2/registry/remote/retry"
)

// PullPolicy says when Pull asks the registry what a tag points at.
type PullPolicy int

const (
	// PullDefault is PullIfNotPresent, except for the tag "latest", which
	// is PullAlways (Istio's and Kubernetes' default).
	PullDefault PullPolicy = iota
	// PullIfNotPresent serves a tag pulled before from the cache without
	// asking the registry.
	PullIfNotPresent
	// PullAlways resolves a tag at the registry on every pull. The module
	// is still downloaded only if the cache lacks it.
	PullAlways
)

// ProgressEvent reports the bytes of one blob moved so far.
type ProgressEvent struct {
	// Digest and MediaType name the blob.
	Digest    string
	MediaType string
	// Done counts bytes moved; it grows to Total. A blob that the registry
	// (on push) already holds is reported once with Done == Total.
	Done  int64
	Total int64
}

// Options configure how the registry is reached and where pulled modules
// land. The zero value talks HTTPS with Docker's stored credentials.
type Options struct {
	// PlainHTTP talks HTTP instead of HTTPS (oras --plain-http). There is
	// no automatic fallback.
	PlainHTTP bool
	// Insecure talks HTTPS without verifying the registry's certificate
	// (oras --insecure), for a registry with a self-signed certificate
	// that the user trusts. It applies when HTTPClient is nil.
	Insecure bool
	// Username and Password, when set, are used for the registry instead
	// of Docker's credentials. Both or neither.
	Username string
	Password string
	// DockerConfig is the path of a Docker config.json to take credentials
	// from (its auths and credential helpers); empty means Docker's default
	// ($DOCKER_CONFIG/config.json, else ~/.docker/config.json).
	DockerConfig string
	// HTTPClient carries the requests; nil means oras-go's retrying client.
	// Bound a call's total time with its context.
	HTTPClient *http.Client
	// Cache is the module store pulled modules land in. Pull requires it;
	// Push, when it is set, also stores the pushed module there.
	Cache *modules.Store
	// IndexDir holds the index from manifest digests and tags to module
	// digests (the node uses <data dir>/oci). Empty disables it: every pull
	// then asks the registry for the manifest.
	IndexDir string
	// Policy says when a tag is resolved again; see PullPolicy.
	Policy PullPolicy
	// ModuleSHA256, when set, is the sha256 the pulled module must have,
	// "sha256:<hex>" or bare hex (the module's bytes; Istio's WasmPlugin
	// sha256 names the manifest of an oci:// URL instead). Pull
	// refuses any other module with an error wrapping ErrDigestMismatch;
	// when the layer's descriptor already shows the difference, before
	// downloading it.
	ModuleSHA256 string
	// Progress, if set, is called as blob bytes move, from the goroutine
	// that called Push or Pull.
	Progress func(ProgressEvent)

	// maxBytes bounds a module and the blobs it comes in; zero means
	// modules.MaxModuleBytes. Tests lower it.
	maxBytes int64
}

// maxManifestBytes bounds a manifest or index, as oras-go does for
// metadata.
const maxManifestBytes = 4 << 20

func (o Options) bound() int64 {
	if o.maxBytes > 0 {
		return o.maxBytes
	}
	return modules.MaxModuleBytes
}

// policyFor resolves PullDefault for a reference.
func (o Options) policyFor(ref Reference) PullPolicy {
	if o.Policy == PullDefault {
		if ref.Digest == "" && ref.Tag == defaultTag {
			return PullAlways
		}
		return PullIfNotPresent
	}
	return o.Policy
}

// repository returns an oras-go client for ref's repository.
func (o Options) repository(ref Reference) (*remote.Repository, error) {
	cred, err := o.credential(ref)
	if err != nil {
		return nil, err
	}
	httpClient := o.HTTPClient
	switch {
	case httpClient == nil && o.Insecure:
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // asked for with Insecure
		httpClient = &http.Client{Transport: retry.NewTransport(tr)}
	case httpClient == nil:
		httpClient = retry.DefaultClient
	}
	return &remote.Repository{
		Reference: registry.Reference{Registry: ref.Registry, Repository: ref.Repository},
		PlainHTTP: o.PlainHTTP,
		Client: &auth.Client{
			Client:     httpClient,
			Cache:      auth.NewCache(),
			Credential: cred,
		},
		MaxMetadataBytes: maxManifestBytes,
	}, nil
}

func (o Options) credential(ref Reference) (auth.CredentialFunc, error) {
	if o.Username != "" || o.Password != "" {
		if o.Username == "" || o.Password == "" {
			return nil, errors.New("registry credentials: pass both a username and a password, or neither to use Docker's stored credentials")
		}
		return auth.StaticCredential(ref.Registry, auth.Credential{Username: o.Username, Password: o.Password}), nil
	}
	var (
		store *credentials.DynamicStore
		err   error
	)
	if o.DockerConfig != "" {
		store, err = credentials.NewStore(o.DockerConfig, credentials.StoreOptions{})
	} else {
		store, err = credentials.NewStoreFromDocker(credentials.StoreOptions{})
	}
	if err != nil {
		where := o.DockerConfig
		if where == "" {
			where = "Docker's config.json"
		}
		return nil, fmt.Errorf("reading registry credentials from %s: %w (fix the file, or pass a username and password)", where, err)
	}
	return credentials.Credential(store), nil
}

// ErrUnauthorized is wrapped by errors for a registry that refused the
// request for want of (valid) credentials: answers 401 and 403.
var ErrUnauthorized = errors.New("registry refused the credentials")

// ErrNotFound is wrapped by errors for a tag, digest or repository the
// registry does not have.
var ErrNotFound = errors.New("not found in the registry")

// ErrDigestMismatch is wrapped by Pull's error for a module whose sha256
// is not Options.ModuleSHA256.
var ErrDigestMismatch = errors.New("the module's sha256 is not the one expected")

// expectedModule returns ModuleSHA256 as "sha256:<hex>", or "" when unset.
func (o Options) expectedModule() (string, error) {
	if o.ModuleSHA256 == "" {
		return "", nil
	}
	d := o.ModuleSHA256
	if !strings.HasPrefix(d, "sha256:") {
		d = "sha256:" + d
	}
	if _, err := modules.ParseDigest(d); err != nil {
		return "", fmt.Errorf("expected module sha256 %q: want 64 lower-case hex digits, with or without sha256:", o.ModuleSHA256)
	}
	return d, nil
}

// mismatch is the error for a module of digest got where want was expected.
func mismatch(r Reference, got, want string) error {
	return fmt.Errorf("pulling %s: the module is %s, not the expected %s: check the sha256, or the reference if its tag moved: %w", r, got, want, ErrDigestMismatch)
}

// remoteError says what a failed registry call means and what to do.
// Unwrap gives both the kind (ErrUnauthorized, ErrNotFound, or nil) and
// oras-go's error.
type remoteError struct {
	msg   string
	kind  error
	cause error
}

func (e *remoteError) Error() string { return e.msg + " (" + e.cause.Error() + ")" }

func (e *remoteError) Unwrap() []error {
	if e.kind == nil {
		return []error{e.cause}
	}
	return []error{e.kind, e.cause}
}

// explain wraps err from a call about ref, doing what (e.g. "pulling"),
// with a sentence a user can act on.
func explain(err error, ref Reference, doing string) error {
	if err == nil {
		return nil
	}
	host := ref.Registry
	var resp *errcode.ErrorResponse
	var netErr *net.OpError
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.Is(err, auth.ErrBasicCredentialNotFound):
		return &remoteError{fmt.Sprintf("%s %s: registry %s answered 401 Unauthorized and no credentials were found for it: pass --username/--password or log in with 'docker login %s'", doing, ref, host, host), ErrUnauthorized, err}
	case errors.As(err, &resp) && resp.StatusCode == http.StatusUnauthorized:
		return &remoteError{fmt.Sprintf("%s %s: registry %s answered 401 Unauthorized to the credentials given: check --username/--password or log in again with 'docker login %s'", doing, ref, host, host), ErrUnauthorized, err}
	case errors.As(err, &resp) && resp.StatusCode == http.StatusForbidden:
		return &remoteError{fmt.Sprintf("%s %s: registry %s answered 403 Forbidden: these credentials may not access repository %s", doing, ref, host, ref.Repository), ErrUnauthorized, err}
	case errors.Is(err, errdef.ErrNotFound) || errors.As(err, &resp) && resp.StatusCode == http.StatusNotFound:
		what := "tag " + ref.Tag
		if ref.Digest != "" {
			what = "manifest " + ref.Digest
		}
		return &remoteError{fmt.Sprintf("%s %s: %s not found in %s (check the name, or push it first)", doing, ref, what, ref.repository()), ErrNotFound, err}
	case errors.As(err, &certErr):
		return &remoteError{fmt.Sprintf("%s %s: registry %s's TLS certificate is not trusted: pass --insecure to skip the check for a registry you trust, or --plain-http if it speaks HTTP", doing, ref, host), nil, err}
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return &remoteError{fmt.Sprintf("%s %s: registry %s speaks plain HTTP, not HTTPS: pass --plain-http", doing, ref, host), nil, err}
	case errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &netErr) && netErr.Op == "dial":
		return &remoteError{fmt.Sprintf("%s %s: cannot reach registry %s: is it running, and is host:port right?", doing, ref, host), nil, err}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &remoteError{fmt.Sprintf("%s %s: registry %s closed the connection early; try again", doing, ref, host), nil, err}
	}
	return fmt.Errorf("%s %s: %w", doing, ref, err)
}
