package oci

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wisp-faas/wisp/functions/modules"
)

// The index under Options.IndexDir is two directories of small JSON files,
// written atomically (temp file, rename):
//
//	manifests/sha256/<hex>.json  manifest digest → module digest, size, format
//	tags/<sha256 of host/repo:tag>.json  tag → manifest digest
//
// A missing or unreadable file is a cache miss, never an error: the pull
// then asks the registry and rewrites it.

// manifestRecord says which module a manifest yielded.
type manifestRecord struct {
	ManifestDigest string `json:"manifestDigest"`
	ModuleDigest   string `json:"moduleDigest"`
	Size           int64  `json:"size"`
	Format         Format `json:"format"`
}

// tagRecord says which manifest a tag pointed at when last resolved.
type tagRecord struct {
	Ref            string `json:"ref"`
	ManifestDigest string `json:"manifestDigest"`
}

func (o Options) manifestPath(manifestDigest string) (string, bool) {
	hexPart, err := modules.ParseDigest(manifestDigest)
	if err != nil || o.IndexDir == "" {
		return "", false
	}
	return filepath.Join(o.IndexDir, "manifests", "sha256", hexPart+".json"), true
}

func (o Options) tagPath(ref Reference) (string, bool) {
	if o.IndexDir == "" || ref.Tag == "" {
		return "", false
	}
	sum := sha256.Sum256([]byte(ref.repository() + ":" + ref.Tag))
	return filepath.Join(o.IndexDir, "tags", hex.EncodeToString(sum[:])+".json"), true
}

// cached returns the record for a manifest digest if the index has one and
// the store still holds its module.
func (o Options) cached(manifestDigest string) (manifestRecord, bool) {
	path, ok := o.manifestPath(manifestDigest)
	if !ok || o.Cache == nil {
		return manifestRecord{}, false
	}
	var rec manifestRecord
	if !readJSON(path, &rec) || rec.ManifestDigest != manifestDigest || !o.Cache.Has(rec.ModuleDigest) {
		return manifestRecord{}, false
	}
	return rec, true
}

// cachedTag returns the manifest digest a tag pointed at when last pulled.
func (o Options) cachedTag(ref Reference) (string, bool) {
	path, ok := o.tagPath(ref)
	if !ok {
		return "", false
	}
	var rec tagRecord
	if !readJSON(path, &rec) || rec.Ref != ref.repository()+":"+ref.Tag {
		return "", false
	}
	return rec.ManifestDigest, true
}

// remember records a pull (or push) in the index; without IndexDir it
// does nothing.
func (o Options) remember(ref Reference, rec manifestRecord) error {
	path, ok := o.manifestPath(rec.ManifestDigest)
	if !ok {
		return nil
	}
	if err := writeJSON(path, rec); err != nil {
		return err
	}
	if path, ok := o.tagPath(ref); ok {
		return writeJSON(path, tagRecord{Ref: ref.repository() + ":" + ref.Tag, ManifestDigest: rec.ManifestDigest})
	}
	return nil
}

func readJSON(path string, v any) bool {
	b, err := os.ReadFile(path)
	return err == nil && json.Unmarshal(b, v) == nil
}

func writeJSON(path string, v any) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("recording the pull in the OCI index %s: %w (check that the directory is writable)", path, err)
		}
	}()
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
