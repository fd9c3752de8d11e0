//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package store

import (
	"errors"
	"os"
	"syscall"
)

// lockFile takes an exclusive, non-blocking flock on path (creating it)
// and returns the function that releases it. The kernel drops the lock
// when the process dies, so a crash leaves nothing to clean up.
func lockFile(path string) (func() error, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if err == syscall.EWOULDBLOCK {
			return nil, errors.New("lock is held")
		}
		return nil, err
	}
	return func() error {
		// Closing the descriptor releases the flock.
		return f.Close()
	}, nil
}
