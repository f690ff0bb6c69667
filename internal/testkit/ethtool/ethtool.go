// Package ethtool makes the SIOCETHTOOL requests that the test kits need:
// a device's statistics, as ethtool -S shows them, and its offloads, as
// ethtool -K sets them. Every request goes through a socket of the
// namespace the device lives in.
package ethtool

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ifreq is struct ifreq with a pointer payload (ifr_data), which points to
// the request: a struct ethtool_* that starts with its command.
type ifreq struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [16]byte
}

// Ioctl sends the request at data for the interface ifname through sock.
func Ioctl(sock int, ifname string, data unsafe.Pointer) error {
	ifr := ifreq{data: data}
	copy(ifr.name[:], ifname)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(sock), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(&ifr)
	if errno != 0 {
		return errno
	}
	return nil
}

// value is struct ethtool_value.
type value struct{ cmd, data uint32 }

// OffloadsOff turns TSO, GSO and GRO off on ifname, so that every frame on
// it is one packet on the wire.
func OffloadsOff(sock int, ifname string) error {
	for _, cmd := range []uint32{unix.ETHTOOL_STSO, unix.ETHTOOL_SGSO, unix.ETHTOOL_SGRO} {
		if err := Ioctl(sock, ifname, unsafe.Pointer(&value{cmd: cmd})); err != nil {
			return fmt.Errorf("ethtool command %#x on %s: %w", cmd, ifname, err)
		}
	}
	return nil
}

const (
	gstringLen = 32 // ETH_GSTRING_LEN
	ssStats    = 1  // ETH_SS_STATS
)

// ssetInfo is struct ethtool_sset_info asking about one string set.
type ssetInfo struct {
	Cmd, _ uint32
	Mask   uint64
	Count  uint32
	_      uint32
}

// StatNames lists the names of ifname's statistics, in the order Stats
// reads them.
func StatNames(sock int, ifname string) ([]string, error) {
	info := ssetInfo{Cmd: unix.ETHTOOL_GSSET_INFO, Mask: 1 << ssStats}
	if err := Ioctl(sock, ifname, unsafe.Pointer(&info)); err != nil {
		return nil, fmt.Errorf("ethtool stats count of %s: %w", ifname, err)
	}
	n := int(info.Count)
	// struct ethtool_gstrings: cmd, string_set, len, then the names.
	buf := make([]uint32, 3+n*gstringLen/4)
	buf[0], buf[1], buf[2] = unix.ETHTOOL_GSTRINGS, ssStats, uint32(n)
	if err := Ioctl(sock, ifname, unsafe.Pointer(&buf[0])); err != nil {
		return nil, fmt.Errorf("ethtool stats names of %s: %w", ifname, err)
	}
	names := make([]string, n)
	if n == 0 {
		return names, nil
	}
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&buf[3])), n*gstringLen)
	for i := range names {
		names[i] = unix.ByteSliceToString(raw[i*gstringLen : (i+1)*gstringLen])
	}
	return names, nil
}

// Stats reads ifname's n statistics, in the order of StatNames.
func Stats(sock int, ifname string, n int) ([]uint64, error) {
	// struct ethtool_stats: cmd, n_stats, then n u64 values.
	buf := make([]uint64, 1+n)
	hdr := (*[2]uint32)(unsafe.Pointer(&buf[0]))
	hdr[0], hdr[1] = unix.ETHTOOL_GSTATS, uint32(n)
	if err := Ioctl(sock, ifname, unsafe.Pointer(&buf[0])); err != nil {
		return nil, fmt.Errorf("ethtool stats of %s: %w", ifname, err)
	}
	return buf[1:], nil
}
