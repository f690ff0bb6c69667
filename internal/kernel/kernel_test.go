package kernel

import (
	"strings"
	"testing"
)

func TestBefore(t *testing.T) {
	for _, c := range []struct {
		release      string
		major, minor int
		want         bool
	}{
		{"6.18.44-fc-v657", 5, 9, false},
		{"5.8.0-63-generic", 5, 9, true},
		{"5.9.0", 5, 9, false},
		{"5.10", 5, 9, false},
		{"4.19.0-27-amd64", 5, 7, true},
		{"5.6-rc1", 5, 7, true},
		{"6.6.0", 6, 6, false},
		{"garbage", 5, 9, false},
		{"", 5, 9, false},
	} {
		if got := Before(c.release, c.major, c.minor); got != c.want {
			t.Errorf("Before(%q, %d, %d) = %v, want %v", c.release, c.major, c.minor, got, c.want)
		}
	}
}

func TestRelease(t *testing.T) {
	r, err := Release()
	if err != nil || !strings.Contains(r, ".") {
		t.Fatalf("Release() = %q, %v", r, err)
	}
	// This kernel is not older than itself, and no kernel is older than 0.0.
	if h := Hint("TC mode", 0, 0); h != "" {
		t.Errorf("Hint(0, 0) = %q, want nothing", h)
	}
	if h := Hint("TC mode", 99, 0); h != "; TC mode needs Linux 99.0 or later, and this kernel is "+r {
		t.Errorf("Hint(99, 0) = %q", h)
	}
}
