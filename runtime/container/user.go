package container

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// user is who a container's process runs as.
type user struct {
	uid, gid   uint32
	additional []uint32 // supplementary groups
	home       string   // HOME unless the image or the Revision sets it
}

// resolveUser turns an image's User ("", "uid", "name", "uid:gid",
// "name:group", ...) into IDs, reading the image's own /etc/passwd and
// /etc/group under rootfs as Docker does. A name must be found there; a
// number need not. The default is root.
func resolveUser(rootfs, spec string) (user, error) {
	u := user{home: "/"}
	name, group, hasGroup := strings.Cut(spec, ":")
	if name == "" {
		name = "0"
	}
	passwd, err := readDB(rootfs, "etc/passwd")
	if err != nil {
		return u, err
	}
	username := ""
	if id, err := strconv.ParseUint(name, 10, 32); err == nil {
		u.uid = uint32(id)
		for _, f := range passwd {
			if len(f) >= 6 && f[2] == name {
				username, u.home = f[0], f[5]
				if gid, err := strconv.ParseUint(f[3], 10, 32); err == nil {
					u.gid = uint32(gid)
				}
				break
			}
		}
	} else {
		found := false
		for _, f := range passwd {
			if len(f) >= 6 && f[0] == name {
				uid, err1 := strconv.ParseUint(f[2], 10, 32)
				gid, err2 := strconv.ParseUint(f[3], 10, 32)
				if err1 != nil || err2 != nil {
					return u, fmt.Errorf("the image's user %q has a malformed line in /etc/passwd", name)
				}
				u.uid, u.gid, u.home, username, found = uint32(uid), uint32(gid), f[5], name, true
				break
			}
		}
		if !found {
			return u, fmt.Errorf("the image's user %q is not in the image's /etc/passwd; set a numeric user in the image", name)
		}
	}
	if u.home == "" {
		u.home = "/"
	}

	groups, err := readDB(rootfs, "etc/group")
	if err != nil {
		return u, err
	}
	if hasGroup && group != "" {
		if id, err := strconv.ParseUint(group, 10, 32); err == nil {
			u.gid = uint32(id)
		} else {
			found := false
			for _, f := range groups {
				if len(f) >= 3 && f[0] == group {
					gid, err := strconv.ParseUint(f[2], 10, 32)
					if err != nil {
						return u, fmt.Errorf("the image's group %q has a malformed line in /etc/group", group)
					}
					u.gid, found = uint32(gid), true
					break
				}
			}
			if !found {
				return u, fmt.Errorf("the image's group %q is not in the image's /etc/group; set a numeric group in the image", group)
			}
		}
	}
	if username != "" {
		for _, f := range groups {
			if len(f) < 4 {
				continue
			}
			gid, err := strconv.ParseUint(f[2], 10, 32)
			if err != nil || uint32(gid) == u.gid {
				continue
			}
			for _, m := range strings.Split(f[3], ",") {
				if m == username {
					u.additional = append(u.additional, uint32(gid))
					break
				}
			}
		}
	}
	return u, nil
}

// readDB reads a colon-separated file of the image, such as etc/passwd,
// resolving its path inside rootfs. A missing file reads as empty.
func readDB(rootfs, name string) ([][]string, error) {
	p, err := resolveIn(rootfs, name)
	if err != nil {
		return nil, fmt.Errorf("reading the image's /%s: %w", name, err)
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err == nil && !fi.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	if err != nil {
		return nil, fmt.Errorf("reading the image's /%s: %w", name, err)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("reading the image's /%s: %w", name, err)
	}
	defer f.Close()
	var out [][]string
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("reading the image's /%s: %w", name, err)
	}
	return out, nil
}
