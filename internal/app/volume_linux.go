package app

import "syscall"

// volumeBytes is what statfs says of the filesystem holding dir: the bytes
// an unprivileged user may still write (f_bavail) and its size, in bytes.
func volumeBytes(dir string) (avail, size uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	bs := uint64(st.Bsize) //nolint:gosec // a block size is positive
	return st.Bavail * bs, st.Blocks * bs, nil
}
