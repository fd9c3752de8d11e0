package container

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// maxSymlinks bounds the symbolic links followed while resolving one path
// inside a rootfs, as the kernel's own limit does (ELOOP).
const maxSymlinks = 255

// resolveIn returns where name is inside the directory root, following
// symbolic links as they would be followed with root as "/": an absolute
// target starts again from root, and ".." never climbs above root.
// Missing components are taken as they are. The result is always root or
// below it, and none of its existing components is a symbolic link.
//
// Only this package writes in the rootfs it resolves in, so there is no
// race between resolving and using the result.
func resolveIn(root, name string) (string, error) {
	var resolved string // relative to root, clean, "" is root
	rest := name
	links := 0
	for rest != "" {
		var part string
		part, rest, _ = strings.Cut(rest, "/")
		switch part {
		case "", ".":
			continue
		case "..":
			if resolved = path.Dir(resolved); resolved == "." || resolved == "/" {
				resolved = ""
			}
			continue
		}
		next := path.Join(resolved, part)
		host := filepath.Join(root, filepath.FromSlash(next))
		fi, err := os.Lstat(host)
		if errors.Is(err, fs.ErrNotExist) {
			resolved = next
			continue
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		if links++; links > maxSymlinks {
			return "", fmt.Errorf("%s: too many levels of symbolic links", name)
		}
		target, err := os.Readlink(host)
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			resolved = ""
		}
		rest = target + "/" + rest
	}
	return filepath.Join(root, filepath.FromSlash(resolved)), nil
}

// resolveEntryIn is resolveIn for everything but the last component of
// name, which is not followed: where an entry of an archive named name
// is created or replaced.
func resolveEntryIn(root, name string) (string, error) {
	dir, base := path.Split(name)
	if base == "" || base == "." {
		return resolveIn(root, dir)
	}
	parent, err := resolveIn(root, dir)
	if err != nil {
		return "", err
	}
	return filepath.Join(parent, base), nil
}

// entryName checks the name of a tar entry and returns it relative to
// the rootfs, "" for the rootfs itself. Names with a ".." component are
// refused outright: no image builder writes them, and they are how an
// archive tries to write outside the directory it is unpacked in.
func entryName(name string) (string, error) {
	if slices.Contains(strings.Split(name, "/"), "..") {
		return "", fmt.Errorf("tar entry %q has a \"..\" component; refusing an image that writes outside its root filesystem", name)
	}
	if strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("tar entry %q has a NUL byte", name)
	}
	clean := path.Clean("/" + name)[1:]
	return clean, nil
}

// extractTar unpacks the tar stream r into the existing directory root.
// Entries are created as the archive says, owners and modes included,
// but never outside root: names with ".." are refused, and symbolic
// links met on the way to an entry, including those the archive itself
// created, are followed with root as "/" (resolveIn). Hard links must
// point inside the archive. Device nodes are skipped (runc provides
// /dev); extended attributes are dropped.
func extractTar(r io.Reader, root string) error {
	tr := tar.NewReader(r)
	type dirTime struct {
		path  string
		mtime time.Time
	}
	var dirs []dirTime
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the image's layers: %w", err)
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			return err
		}
		if name == "" { // the root itself: "./" or "/"
			if hdr.Typeflag == tar.TypeDir {
				if err := setAttrs(root, hdr); err != nil {
					return err
				}
				dirs = append(dirs, dirTime{root, hdr.ModTime})
			}
			continue
		}
		dst, err := resolveEntryIn(root, name)
		if err != nil {
			return fmt.Errorf("tar entry %q: %w", hdr.Name, err)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("tar entry %q: %w", hdr.Name, err)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			fi, err := os.Lstat(dst)
			if err == nil && !fi.IsDir() {
				err = os.Remove(dst)
			}
			if err == nil || errors.Is(err, fs.ErrNotExist) {
				err = os.Mkdir(dst, 0o755)
				if errors.Is(err, fs.ErrExist) {
					err = nil
				}
			}
			if err == nil {
				err = setAttrs(dst, hdr)
			}
			if err != nil {
				return fmt.Errorf("tar entry %q: %w", hdr.Name, err)
			}
			dirs = append(dirs, dirTime{dst, hdr.ModTime})
		case tar.TypeReg, tar.TypeRegA:
			if err := replace(dst); err != nil {
				return fmt.Errorf("tar entry %q: %w", hdr.Name, err)
			}
			f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
			if err != nil {
				return fmt.Errorf("tar entry %q: %w", hdr.Name, err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = setAttrs(dst, hdr)
			}
			if err != nil {
				return fmt.Errorf("tar entry %q: %w", hdr.Name, err)
			}
		case tar.TypeSymlink:
			// The target is kept as written: it is resolved in the
			// container, where "/" is the rootfs.
			err := replace(dst)
			if err == nil {
				err = os.Symlink(hdr.Linkname, dst)
			}
			if err == nil {
				err = os.Lchown(dst, hdr.Uid, hdr.Gid)
			}
			if err != nil {
				return fmt.Errorf("tar entry %q: %w", hdr.Name, err)
			}
		case tar.TypeLink:
			target, err := entryName(hdr.Linkname)
			if err == nil && target == "" {
				err = fmt.Errorf("hard link %q to the root directory", hdr.Name)
			}
			if err != nil {
				return err
			}
			src, err := resolveEntryIn(root, target)
			if err == nil {
				err = replace(dst)
			}
			if err == nil {
				err = os.Link(src, dst)
			}
			if err != nil {
				return fmt.Errorf("tar entry %q (a hard link to %q): %w", hdr.Name, hdr.Linkname, err)
			}
		case tar.TypeFifo:
			err := replace(dst)
			if err == nil {
				err = syscall.Mkfifo(dst, uint32(hdr.Mode&0o777))
			}
			if err == nil {
				err = setAttrs(dst, hdr)
			}
			if err != nil {
				return fmt.Errorf("tar entry %q: %w", hdr.Name, err)
			}
		case tar.TypeChar, tar.TypeBlock:
			// Skipped: the container's /dev is runc's.
		default:
			// Skipped: PAX and GNU metadata entries are consumed by
			// archive/tar; anything else is not a file.
		}
	}
	// Directories last, deepest first, so that creating their entries
	// did not change their times again.
	for _, d := range slices.Backward(dirs) {
		_ = os.Chtimes(d.path, d.mtime, d.mtime)
	}
	return nil
}

// replace removes whatever is at dst, unless it is a directory, so that
// an entry of a later layer takes its place.
func replace(dst string) error {
	fi, err := os.Lstat(dst)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.IsDir():
		return os.RemoveAll(dst)
	}
	return os.Remove(dst)
}

// setAttrs gives dst, which is not a symbolic link, the owner, mode and
// modification time of hdr. The owner comes first: chown clears the
// set-user-ID and set-group-ID bits.
func setAttrs(dst string, hdr *tar.Header) error {
	if err := os.Lchown(dst, hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	if err := os.Chmod(dst, hdr.FileInfo().Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeDir {
		return os.Chtimes(dst, hdr.ModTime, hdr.ModTime)
	}
	return nil
}
