//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package store

// lockFile does not lock on this platform: nats-server itself does not
// guard its store directory, so two servers on one DataDir go unnoticed.
func lockFile(path string) (func() error, error) {
	return func() error { return nil }, nil
}
