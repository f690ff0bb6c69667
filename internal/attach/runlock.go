package attach

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// A run lock tells whether the run that added a legacy tc filter is still
// alive, whatever PID namespace either run is in. A PID cannot: a run in
// a container may be PID 1 there, and its PID means nothing, or another
// process, on the host. Each run that adds filters draws a random run ID,
// puts it in the filters' names, and binds an abstract unix socket named
// after it for as long as it runs. Abstract socket names belong to the
// network namespace, which is the interface's, so every run that can see
// the filters can see the socket; and the kernel releases the name with
// the process, however it ends (SIGKILL, OOM). A name that a later run can
// bind is a dead run's.

// runLockPrefix starts the abstract socket name of a run lock.
const runLockPrefix = "pktstat-bpf/run/"

// runLock is this run's lock: its ID and the socket that holds it.
type runLock struct {
	id string
	fd int
}

// newRunLock draws a run ID and takes its lock.
func newRunLock() (*runLock, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("draw a run ID: %w", err)
	}
	id := hex.EncodeToString(b[:])
	fd, err := bindRunLock(id)
	if err != nil {
		return nil, fmt.Errorf("take the run lock %s: %w", id, err)
	}
	return &runLock{id: id, fd: fd}, nil
}

// release gives the lock up.
func (l *runLock) release() {
	if l != nil && l.fd >= 0 {
		unix.Close(l.fd)
		l.fd = -1
	}
}

// bindRunLock binds the abstract socket of run id and returns its fd.
func bindRunLock(id string) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	// A leading '@' is an abstract name: no file, gone with the socket.
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: "@" + runLockPrefix + id}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// runAlive reports whether the run with ID id still holds its lock: its
// name cannot be bound. Any other answer than "in use" means it is gone.
func runAlive(id string) bool {
	fd, err := bindRunLock(id)
	if err == nil {
		unix.Close(fd)
		return false
	}
	return errors.Is(err, unix.EADDRINUSE)
}
