//go:build !linux

package app

import "errors"

// volumeBytes is not measured off Linux.
func volumeBytes(string) (avail, size uint64, err error) {
	return 0, 0, errors.New("filesystem size not measured on this system")
}
