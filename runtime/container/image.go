package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Files of an unpacked image, under <Dir>/images/sha256/<hex>/.
const (
	rootfsDir  = "rootfs"
	configFile = "config.json" // the image's config, as pulled
)

// image is an image unpacked in the cache.
type image struct {
	ref    string // repository@digest
	digest v1.Hash
	dir    string // <Dir>/images/sha256/<hex>
	rootfs string
	config v1.Config
}

// pull is one image being pulled and unpacked; others asking for the
// same digest wait for it.
type pull struct {
	done chan struct{}
	img  *image
	err  error
}

// parseRef parses an image reference, pulling over plain HTTP from the
// registries of Options.InsecureRegistries and from the loopback.
func (p *Provider) parseRef(s string) (name.Reference, error) {
	ref, err := name.ParseReference(s)
	if err != nil {
		return nil, fmt.Errorf("image %q is not a valid reference (registry/repository:tag or @sha256:...): %w", s, err)
	}
	reg := ref.Context().RegistryStr()
	if slices.Contains(p.opts.InsecureRegistries, reg) || isLoopback(reg) {
		ref, err = name.ParseReference(s, name.Insecure)
		if err != nil {
			return nil, fmt.Errorf("image %q: %w", s, err)
		}
	}
	return ref, nil
}

// isLoopback reports whether a registry's host is this machine.
func isLoopback(registry string) bool {
	host := registry
	if h, _, err := net.SplitHostPort(registry); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// Resolve returns image named by the digest its tag names now
// ("registry/repository@sha256:..."), for a controller that pins a
// Revision's image when it creates the Revision, as Knative does. An
// image named by digest already is returned as it is, without asking
// the registry. For a multi-platform image it is the index's digest.
func (p *Provider) Resolve(ctx context.Context, image string) (string, error) {
	ref, err := p.parseRef(image)
	if err != nil {
		return "", err
	}
	if d, ok := ref.(name.Digest); ok {
		return d.String(), nil
	}
	desc, err := remote.Head(ref, remote.WithContext(ctx), remote.WithAuthFromKeychain(p.opts.Keychain), remote.WithUserAgent("wisp"))
	if err != nil {
		return "", pullError(image, err)
	}
	return ref.Context().Digest(desc.Digest.String()).String(), nil
}

// image returns the image s unpacked in the cache, pulling it unless an
// image with its digest is there already. An image named by digest is
// found in the cache without asking the registry.
func (p *Provider) image(ctx context.Context, s string) (*image, error) {
	ref, err := p.parseRef(s)
	if err != nil {
		return nil, err
	}
	if d, ok := ref.(name.Digest); ok {
		if h, err := v1.NewHash(d.DigestStr()); err == nil {
			if img, err := p.cached(ref, h); err == nil {
				return img, nil
			}
		}
	}

	remoteImg, err := remote.Image(ref,
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(p.opts.Keychain),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: goruntime.GOARCH}),
		remote.WithUserAgent("wisp"),
	)
	if err != nil {
		return nil, pullError(s, err)
	}
	digest, err := remoteImg.Digest()
	if err != nil {
		return nil, pullError(s, err)
	}

	key := digest.String()
	p.mu.Lock()
	pl, busy := p.pulls[key]
	if !busy {
		pl = &pull{done: make(chan struct{})}
		p.pulls[key] = pl
	}
	p.mu.Unlock()
	if busy {
		select {
		case <-pl.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("image %s: %w", s, context.Cause(ctx))
		}
		if pl.err != nil {
			return nil, pl.err
		}
		return pl.img, nil
	}
	pl.img, pl.err = p.unpack(ref, remoteImg, digest, s)
	if pl.err == nil {
		p.alias(ref, digest)
	}
	p.mu.Lock()
	delete(p.pulls, key)
	p.mu.Unlock()
	close(pl.done)
	return pl.img, pl.err
}

// imageDir is where the image with digest h is unpacked.
func (p *Provider) imageDir(h v1.Hash) string {
	return filepath.Join(p.opts.Dir, "images", h.Algorithm, h.Hex)
}

// cached returns the image with digest h from the cache.
func (p *Provider) cached(ref name.Reference, h v1.Hash) (*image, error) {
	dir := p.imageDir(h)
	b, err := os.ReadFile(filepath.Join(dir, configFile))
	if err != nil {
		return nil, err
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("the cached config of %s: %w", h, err)
	}
	// The directory may be an alias (an index's digest) of the image's.
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	return &image{
		ref:    ref.Context().Digest(h.String()).String(),
		digest: h,
		dir:    real,
		rootfs: filepath.Join(real, rootfsDir),
		config: cfg.Config,
	}, nil
}

// alias makes an image pulled by the digest of an index (a multi-platform
// image) findable in the cache by that digest too.
func (p *Provider) alias(ref name.Reference, digest v1.Hash) {
	d, ok := ref.(name.Digest)
	if !ok {
		return
	}
	h, err := v1.NewHash(d.DigestStr())
	if err != nil || h == digest {
		return
	}
	link := p.imageDir(h)
	if err := os.Symlink(digest.Hex, link); err != nil && !errors.Is(err, fs.ErrExist) {
		p.log.Warn("could not record an image index's digest in the cache", "image", ref, "error", err)
	}
}

// unpack writes img into the cache under its digest, unless it is there
// already: into a temporary directory first, renamed into place once
// complete, so that a crash leaves no half-unpacked image behind.
func (p *Provider) unpack(ref name.Reference, img v1.Image, digest v1.Hash, s string) (*image, error) {
	if cached, err := p.cached(ref, digest); err == nil {
		return cached, nil
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, pullError(s, err)
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("image %s: its config is not valid JSON: %w", s, err)
	}
	if cfg.OS != "" && cfg.OS != "linux" {
		return nil, fmt.Errorf("image %s is for %s, not linux", s, cfg.OS)
	}

	images := filepath.Join(p.opts.Dir, "images")
	if err := os.MkdirAll(filepath.Join(images, digest.Algorithm), 0o700); err != nil {
		return nil, fmt.Errorf("image cache: %w", err)
	}
	tmp, err := os.MkdirTemp(images, "tmp-")
	if err != nil {
		return nil, fmt.Errorf("image cache: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	rootfs := filepath.Join(tmp, rootfsDir)
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return nil, fmt.Errorf("image cache: %w", err)
	}
	p.log.Info("unpacking image", "image", s, "digest", digest)
	layers := mutate.Extract(img)
	err = extractTar(layers, rootfs)
	layers.Close()
	if err != nil {
		return nil, pullError(s, err)
	}
	if err := prepareRootfs(rootfs, cfg.Config.WorkingDir); err != nil {
		return nil, fmt.Errorf("image %s: %w", s, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, configFile), raw, 0o600); err != nil {
		return nil, fmt.Errorf("image cache: %w", err)
	}

	dir := p.imageDir(digest)
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, fs.ErrExist) && !errors.Is(err, syscall.ENOTEMPTY) {
		return nil, fmt.Errorf("image cache: %w", err)
	}
	return p.cached(ref, digest)
}

// mountPoints are where every container gets a mount; they are made in
// the rootfs when it is unpacked so that runc, which would make them
// itself, never writes in the shared rootfs.
var (
	mountDirs  = []string{"proc", "dev", "sys", "tmp"}
	mountFiles = []string{"etc/hosts", "etc/hostname", "etc/resolv.conf"}
)

// prepareRootfs makes the mount points and the working directory in an
// unpacked rootfs, following the image's symbolic links inside it.
func prepareRootfs(rootfs, workingDir string) error {
	dirs := mountDirs
	if workingDir != "" {
		dirs = append(slices.Clone(dirs), workingDir)
	}
	for _, d := range dirs {
		p, err := resolveIn(rootfs, d)
		if err == nil {
			err = os.MkdirAll(p, 0o755)
		}
		if err != nil {
			return fmt.Errorf("making /%s in the root filesystem: %w", strings.TrimPrefix(d, "/"), err)
		}
	}
	for _, f := range mountFiles {
		p, err := resolveIn(rootfs, f)
		if err == nil {
			err = os.MkdirAll(filepath.Dir(p), 0o755)
		}
		if err == nil {
			var fh *os.File
			fh, err = os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
			if err == nil {
				err = fh.Close()
			}
		}
		if err != nil {
			return fmt.Errorf("making /%s in the root filesystem: %w", f, err)
		}
	}
	return nil
}

// pullError says why image s could not be pulled, and what to do.
func pullError(s string, err error) error {
	if te, ok := errors.AsType[*transport.Error](err); ok {
		for _, d := range te.Errors {
			switch d.Code {
			case transport.NameUnknownErrorCode, transport.ManifestUnknownErrorCode:
				return fmt.Errorf("image %s: not found in its registry (%s); check the repository and tag, and that the image was pushed", s, d.Message)
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return fmt.Errorf("image %s: the registry refused access (%s); give the node credentials with 'docker login' (it reads ~/.docker/config.json)", s, d.Message)
			}
		}
		switch te.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("image %s: not found in its registry; check the repository and tag, and that the image was pushed", s)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("image %s: the registry refused access; give the node credentials with 'docker login' (it reads ~/.docker/config.json)", s)
		}
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("image %s: its registry is not reachable: %w", s, err)
	}
	return fmt.Errorf("image %s: pulling: %w", s, err)
}
