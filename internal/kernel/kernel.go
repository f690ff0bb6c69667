// Package kernel names the running kernel's release, to explain a failure
// that a kernel too old for a feature causes. It is never used to decide
// what to try: feature probes and the kernel's own answers do that, and a
// distribution kernel may carry features its version number predates.
package kernel

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Release returns the running kernel's release, such as "6.18.44-fc".
func Release() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}

// Before reports whether the release is older than major.minor. A release
// it cannot read is not before anything.
func Before(release string, major, minor int) bool {
	maj, rest, ok := strings.Cut(release, ".")
	if !ok {
		return false
	}
	minText := rest
	if i := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minText = rest[:i]
	}
	ma, err1 := strconv.Atoi(maj)
	mi, err2 := strconv.Atoi(minText)
	if err1 != nil || err2 != nil {
		return false
	}
	return ma < major || (ma == major && mi < minor)
}

// Hint returns "; WHAT needs Linux MAJOR.MINOR or later, and this kernel
// is RELEASE" when the running kernel is older than major.minor, else "".
func Hint(what string, major, minor int) string {
	r, err := Release()
	if err != nil || !Before(r, major, minor) {
		return ""
	}
	return fmt.Sprintf("; %s needs Linux %d.%d or later, and this kernel is %s", what, major, minor, r)
}
