// Command image layers a built wisp binary onto a base image and pushes
// the result to a registry, without a Docker daemon (`make image`).
//
//	go run ./scripts/image --binary bin/linux/wisp --image REGISTRY/REPO:TAG [--base REF]
//
// The image holds /wisp, the host's CA bundle (so that nodes can pull
// modules from TLS registries), an empty /tmp and an /etc/passwd with the
// user 65532 it runs as. Without --base it starts from an empty image:
// the binary is static (CGO_ENABLED=0). It prints REGISTRY/REPO@sha256:...,
// the reference to deploy. Registries on loopback and private addresses
// are reached over plain HTTP (go-containerregistry's rule).
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const caBundle = "/etc/ssl/certs/ca-certificates.crt"

func main() {
	binary := flag.String("binary", "", "the linux wisp binary to put at /wisp")
	image := flag.String("image", "", "where to push: REGISTRY/REPO:TAG")
	base := flag.String("base", "", "base image (default: none; the binary is static)")
	version := flag.String("version", "dev", "the org.opencontainers.image.version label")
	flag.Parse()
	if *binary == "" || *image == "" {
		fmt.Fprintln(os.Stderr, "image: give --binary FILE and --image REGISTRY/REPO:TAG (make image IMAGE=REGISTRY/REPO:TAG)")
		os.Exit(2)
	}
	ref, err := build(*binary, *image, *base, *version)
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	fmt.Println(ref)
}

func build(binary, image, base, version string) (string, error) {
	dst, err := name.ParseReference(image)
	if err != nil {
		return "", fmt.Errorf("--image %q: %w", image, err)
	}
	img := empty.Image
	if base != "" {
		bref, err := name.ParseReference(base)
		if err != nil {
			return "", fmt.Errorf("--base %q: %w", base, err)
		}
		if img, err = remote.Image(bref, remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH})); err != nil {
			return "", fmt.Errorf("pulling base %s: %w", base, err)
		}
	} else {
		img = mutate.MediaType(mutate.ConfigMediaType(img, types.OCIConfigJSON), types.OCIManifestSchema1)
	}
	layer, err := rootfs(binary)
	if err != nil {
		return "", err
	}
	if img, err = mutate.AppendLayers(img, layer); err != nil {
		return "", fmt.Errorf("adding the layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return "", fmt.Errorf("reading the image config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Entrypoint = []string{"/wisp"}
	cf.Config.Cmd = []string{"serve", "--kubernetes"}
	cf.Config.User = "65532:65532"
	cf.Config.WorkingDir = "/"
	if cf.Config.Labels == nil {
		cf.Config.Labels = map[string]string{}
	}
	cf.Config.Labels["org.opencontainers.image.title"] = "wisp"
	cf.Config.Labels["org.opencontainers.image.version"] = version
	cf.Config.Labels["org.opencontainers.image.source"] = "https://github.com/wisp-faas/wisp"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return "", fmt.Errorf("setting the image config: %w", err)
	}
	if err := remote.Write(dst, img, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return "", fmt.Errorf("pushing %s: %w", dst, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("image digest: %w", err)
	}
	return dst.Context().Digest(d.String()).String(), nil
}

// rootfs is the one layer wisp adds. Its files have fixed times and
// owners, so the same binary gives the same digest.
func rootfs(binary string) (v1.Layer, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("--binary: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	dir := func(path string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: path, Mode: mode, ModTime: epoch})
	}
	file := func(path string, mode int64, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path, Mode: mode, Size: int64(len(b)), ModTime: epoch}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	if err := dir("etc/", 0o755); err != nil {
		return nil, err
	}
	if err := file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")); err != nil {
		return nil, err
	}
	if err := file("etc/group", 0o644, []byte("root:x:0:\nnonroot:x:65532:\n")); err != nil {
		return nil, err
	}
	if ca, err := os.ReadFile(caBundle); err == nil {
		for _, d := range []string{"etc/ssl/", "etc/ssl/certs/"} {
			if err := dir(d, 0o755); err != nil {
				return nil, err
			}
		}
		if err := file("etc/ssl/certs/ca-certificates.crt", 0o644, ca); err != nil {
			return nil, err
		}
	} else {
		fmt.Fprintf(os.Stderr, "image: no %s on this machine (%v): the image trusts no TLS registry\n", caBundle, err)
	}
	if err := dir("tmp/", 0o1777); err != nil {
		return nil, err
	}
	if err := file("wisp", 0o755, bin); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("writing the layer: %w", err)
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
}
