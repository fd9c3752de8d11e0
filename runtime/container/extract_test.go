//go:build linux

package container

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// unpack extracts entries into a fresh rootfs inside a directory of its
// own, and returns both.
func unpack(t *testing.T, entries []tarEntry) (outside, rootfs string, err error) {
	t.Helper()
	outside = t.TempDir()
	rootfs = filepath.Join(outside, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := writeTar(&buf, entries); err != nil {
		t.Fatal(err)
	}
	return outside, rootfs, extractTar(&buf, rootfs)
}

func TestExtractRefusesEntriesWithDotDot(t *testing.T) {
	for _, e := range []tarEntry{
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "../evil", Mode: 0o644}, body: []byte("x")},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "a/../../evil", Mode: 0o644}, body: []byte("x")},
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "../evil/", Mode: 0o755}},
		{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "../evil", Linkname: "/"}},
		{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "evil", Linkname: "../outside"}},
	} {
		outside, _, err := unpack(t, []tarEntry{e})
		if err == nil || !strings.Contains(err.Error(), `".." component`) {
			t.Errorf("entry %q (link %q): error %v, want it refused", e.hdr.Name, e.hdr.Linkname, err)
		}
		if exists(filepath.Join(outside, "evil")) {
			t.Errorf("entry %q wrote outside the rootfs", e.hdr.Name)
		}
	}
}

func TestExtractKeepsSymlinkedPathsInsideTheRootfs(t *testing.T) {
	outside, rootfs, err := unpack(t, []tarEntry{
		{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "abs", Linkname: "/"}},
		{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "rel", Linkname: "../../../.."}},
		{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "host", Linkname: outsideMarker}},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "abs/evil1", Mode: 0o644}, body: []byte("1")},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "rel/evil2", Mode: 0o644}, body: []byte("2")},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "host/evil3", Mode: 0o644}, body: []byte("3")},
		// A hard link through a symlink gets the file inside the rootfs.
		{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "hard", Linkname: "abs/evil1"}},
		// An entry replacing a symlink replaces the link, not its target.
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "abs", Mode: 0o644}, body: []byte("file")},
	})
	if err != nil {
		t.Fatalf("extract: %v", err)
	}
	for f, want := range map[string]string{
		"evil1": "1", "evil2": "2", strings.TrimPrefix(outsideMarker, "/") + "/evil3": "3", "hard": "1", "abs": "file",
	} {
		b, err := os.ReadFile(filepath.Join(rootfs, f))
		if err != nil || string(b) != want {
			t.Errorf("rootfs/%s = %q, %v; want %q", f, b, err, want)
		}
	}
	var leaked []string
	_ = filepath.Walk(outside, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !strings.HasPrefix(p, rootfs) && p != outside {
			leaked = append(leaked, p)
		}
		return nil
	})
	if len(leaked) != 0 {
		t.Errorf("written outside the rootfs: %q", leaked)
	}
	if exists(outsideMarker) {
		t.Errorf("written to the node's %s", outsideMarker)
	}
}

// outsideMarker is an absolute path on the node that a symlink in a test
// archive points at; nothing may be created there.
const outsideMarker = "/tmp/wisp-container-test-must-not-exist"

func TestExtractSetsOwnersModesAndLinks(t *testing.T) {
	_, rootfs, err := unpack(t, []tarEntry{
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755}},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "./usr/bin/tool", Mode: 0o4755, Uid: 1000, Gid: 2000}, body: []byte("#!")},
		{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "bin", Linkname: "usr/bin"}},
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "/data/", Mode: 0o1777}},
		{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Devmajor: 1, Devminor: 3}},
	})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(rootfs, "bin/tool"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o755|os.ModeSetuid {
		t.Errorf("mode %s, want -rwsr-xr-x", fi.Mode())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != 1000 || st.Gid != 2000 {
		t.Errorf("owner %+v, want 1000:2000", fi.Sys())
	}
	if fi, err := os.Stat(filepath.Join(rootfs, "data")); err != nil || fi.Mode() != os.ModeDir|os.ModeSticky|0o777 {
		t.Errorf("data: %v %v, want drwxrwxrwt", fi, err)
	}
	if exists(filepath.Join(rootfs, "dev/null")) {
		t.Error("a device node was created")
	}
}

func TestResolveIn(t *testing.T) {
	root := t.TempDir()
	for _, l := range [][2]string{{"abs", "/etc"}, {"up", "../../.."}, {"loop", "loop"}, {"chain", "abs/../up/etc"}} {
		if err := os.Symlink(l[1], filepath.Join(root, l[0])); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"etc/passwd", "etc/passwd"},
		{"/abs/passwd", "etc/passwd"},
		{"up/etc/passwd", "etc/passwd"},
		{"../../etc", "etc"},
		{"chain/x", "etc/x"},
		{"", ""},
	} {
		got, err := resolveIn(root, tc.in)
		if want := filepath.Join(root, tc.want); err != nil || got != want {
			t.Errorf("resolveIn(%q) = %q, %v; want %q", tc.in, got, err, want)
		}
	}
	if _, err := resolveIn(root, "loop/x"); err == nil || !strings.Contains(err.Error(), "too many levels") {
		t.Errorf("resolveIn through a loop = %v", err)
	}
}

func TestResolveUser(t *testing.T) {
	rootfs := t.TempDir()
	if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n# comment\napp:x:1000:1001::/home/app:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "etc/group"), []byte("root:x:0:\napp:x:1001:\nweb:x:3000:nobody,app\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		spec string
		want user
	}{
		{"", user{uid: 0, gid: 0, home: "/root"}},
		{"app", user{uid: 1000, gid: 1001, additional: []uint32{3000}, home: "/home/app"}},
		{"1000", user{uid: 1000, gid: 1001, additional: []uint32{3000}, home: "/home/app"}},
		{"app:web", user{uid: 1000, gid: 3000, home: "/home/app"}},
		{"4242:7", user{uid: 4242, gid: 7, home: "/"}},
	} {
		got, err := resolveUser(rootfs, tc.spec)
		if err != nil || got.uid != tc.want.uid || got.gid != tc.want.gid || got.home != tc.want.home || !slices.Equal(got.additional, tc.want.additional) {
			t.Errorf("resolveUser(%q) = %+v, %v; want %+v", tc.spec, got, err, tc.want)
		}
	}
	for _, spec := range []string{"nobody", "app:nogroup"} {
		if _, err := resolveUser(rootfs, spec); err == nil || !strings.Contains(err.Error(), "is not in the image's") {
			t.Errorf("resolveUser(%q) = %v, want it to say the name is unknown", spec, err)
		}
	}
}
