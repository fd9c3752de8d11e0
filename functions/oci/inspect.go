package oci

import (
	"context"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Descriptor describes a blob or manifest a manifest points at.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Platform is "os/arch[/variant]" for an entry of an index.
	Platform string `json:"platform,omitempty"`
}

// Info describes what a reference points at, as `wisp plugin inspect`
// shows it.
type Info struct {
	// Ref is the reference inspected, pinned to ManifestDigest.
	Ref            Reference         `json:"ref"`
	ManifestDigest string            `json:"manifestDigest"`
	MediaType      string            `json:"mediaType"`
	ArtifactType   string            `json:"artifactType,omitempty"`
	Config         *Descriptor       `json:"config,omitempty"`
	Layers         []Descriptor      `json:"layers,omitempty"`
	Manifests      []Descriptor      `json:"manifests,omitempty"` // of an index
	Annotations    map[string]string `json:"annotations,omitempty"`
	// Format is the layout Pull would read, judged from media types alone
	// (FormatRaw is confirmed only by pulling); empty for an index or when
	// no layout matches, with the reason in FormatError.
	Format      Format `json:"format,omitempty"`
	FormatError string `json:"formatError,omitempty"`
}

// Inspect fetches the manifest ref names and describes it, without
// downloading any blob.
func Inspect(ctx context.Context, ref string, opts Options) (Info, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return Info{}, err
	}
	repo, err := opts.repository(r)
	if err != nil {
		return Info{}, err
	}
	desc, m, err := fetchManifest(ctx, repo, r, "inspecting")
	if err != nil {
		return Info{}, err
	}
	r.Digest = desc.Digest.String()
	info := Info{
		Ref:            r,
		ManifestDigest: desc.Digest.String(),
		MediaType:      m.MediaType,
		ArtifactType:   m.ArtifactType,
		Annotations:    m.Annotations,
	}
	if m.isIndex() {
		for _, d := range m.Manifests {
			info.Manifests = append(info.Manifests, descriptor(d))
		}
		info.FormatError = "an image index: Pull follows it only when it holds exactly one manifest"
		return info, nil
	}
	if m.Config != nil {
		c := descriptor(*m.Config)
		info.Config = &c
	}
	for _, d := range m.Layers {
		info.Layers = append(info.Layers, descriptor(d))
	}
	if format, _, err := detect(r, m); err != nil {
		info.FormatError = err.Error()
	} else {
		info.Format = format
	}
	return info, nil
}

func descriptor(d ocispec.Descriptor) Descriptor {
	out := Descriptor{MediaType: d.MediaType, Digest: d.Digest.String(), Size: d.Size, Annotations: d.Annotations}
	if d.Platform != nil {
		out.Platform = platformString(d.Platform)
	}
	return out
}
