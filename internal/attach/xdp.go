package attach

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/kernel"
)

// XDPMode is how an XDP program is attached.
type XDPMode string

// XDP attach modes.
const (
	XDPAuto    XDPMode = "auto"    // native where the driver can, else generic
	XDPGeneric XDPMode = "generic" // in the core stack, after the skb is built; any driver
	XDPNative  XDPMode = "native"  // in the driver's receive path, before any skb exists
	XDPOffload XDPMode = "offload" // on the NIC itself
)

// XDP is one XDP program attached to one interface through a BPF link. A
// link never replaces a program that is already attached, and the kernel
// detaches it when its last file descriptor closes, so a killed run leaves
// nothing behind.
type XDP struct {
	mode XDPMode
	link link.Link
}

// Mode says how the program ended up attached: native, generic or offload.
func (x *XDP) Mode() XDPMode { return x.mode }

// ForeignXDPError is returned when another XDP program already holds the
// interface. XDP has one program per interface, and this tool never
// replaces a program it did not attach.
type ForeignXDPError struct {
	Iface string
	ID    ebpf.ProgramID // 0 when the kernel did not say
	Name  string         // "" when the program could not be inspected
	Mode  string         // native, generic, offload or several
}

func (e *ForeignXDPError) Error() string {
	what := "another XDP program"
	if e.ID != 0 {
		what = fmt.Sprintf("XDP program id %d (%q)", e.ID, e.Name)
	}
	mode := ""
	if e.Mode != "" {
		mode = " in " + e.Mode + " mode"
	}
	return fmt.Sprintf("interface %s already has %s attached%s; pktstat-bpf does not replace programs it did not attach: count with TC instead (run without -x), which coexists with other programs", e.Iface, what, mode)
}

// AttachXDP attaches the program that progFor gives for a mode to the
// interface with index ifindex. In XDPAuto mode, native is tried first
// and generic is the fallback when the driver refuses; progFor may give
// each mode its own program. An error from progFor ends the attempt as it
// is. If another XDP program is attached already, it fails with a
// *ForeignXDPError and leaves that program alone.
func AttachXDP(ifindex int, progFor func(XDPMode) (*ebpf.Program, error), mode XDPMode, log *slog.Logger) (*XDP, error) {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return nil, fmt.Errorf("look up interface %d: %w", ifindex, err)
	}
	name := l.Attrs().Name
	if ferr := foreignXDP(l); ferr != nil {
		return nil, ferr
	}

	// try returns the attached program, or, with refused set, the error of
	// a driver that refused it.
	try := func(m XDPMode) (x *XDP, refused bool, err error) {
		prog, err := progFor(m)
		if err != nil {
			return nil, false, err
		}
		lk, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: xdpFlags[m]})
		if err == nil {
			return &XDP{mode: m, link: lk}, false, nil
		}
		// EBUSY: a program in the same mode; EEXIST: one in the other mode.
		// Either appeared after the check above.
		if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST) {
			if ferr := foreignXDP(l); ferr != nil {
				return nil, false, ferr
			}
			return nil, false, &ForeignXDPError{Iface: name}
		}
		return nil, !errors.Is(err, unix.EPERM), modeError(m, name, err)
	}

	if mode != XDPAuto {
		x, _, err := try(mode)
		return x, err
	}
	x, refused, err := try(XDPNative)
	if err == nil || !refused {
		return x, err
	}
	log.Info("native XDP was refused; falling back to generic XDP, which runs later in the stack and costs more per packet", "iface", name, "reason", err)
	x, _, err = try(XDPGeneric)
	return x, err
}

var xdpFlags = map[XDPMode]link.XDPAttachFlags{
	XDPGeneric: link.XDPGenericMode,
	XDPNative:  link.XDPDriverMode,
	XDPOffload: link.XDPOffloadMode,
}

// modeError names the mode and the driver when the driver cannot do it.
func modeError(m XDPMode, iface string, err error) error {
	driver := DriverName(iface)
	if hint := kernel.Hint("XDP through a BPF link", 5, 9); hint != "" {
		return fmt.Errorf("attach XDP in %s mode to %s (driver %s)%s: %w", m, iface, driver, hint, err)
	}
	switch {
	case m == XDPNative && errors.Is(err, unix.EOPNOTSUPP):
		return fmt.Errorf("attach XDP in native mode to %s: driver %s does not support native XDP (try --xdp_mode generic): %w", iface, driver, err)
	case m == XDPNative:
		return fmt.Errorf("attach XDP in native mode to %s: driver %s refused it (try --xdp_mode generic): %w", iface, driver, err)
	case m == XDPOffload:
		return fmt.Errorf("attach XDP in offload mode to %s: driver %s cannot offload XDP programs to the NIC (try --xdp_mode native or generic): %w", iface, driver, err)
	}
	return fmt.Errorf("attach XDP in %s mode to %s (driver %s): %w", m, iface, driver, err)
}

// foreignXDP describes the XDP program attached to l, or returns nil when
// there is none. It reads the link afresh: l may be stale.
func foreignXDP(l netlink.Link) *ForeignXDPError {
	cur, err := netlink.LinkByIndex(l.Attrs().Index)
	if err != nil || cur.Attrs().Xdp == nil || !cur.Attrs().Xdp.Attached {
		return nil
	}
	x := cur.Attrs().Xdp
	e := &ForeignXDPError{Iface: cur.Attrs().Name, ID: ebpf.ProgramID(x.ProgId)}
	switch x.AttachMode {
	case nl.XDP_ATTACHED_DRV:
		e.Mode = "native"
	case nl.XDP_ATTACHED_SKB:
		e.Mode = "generic"
	case nl.XDP_ATTACHED_HW:
		e.Mode = "offload"
	default:
		e.Mode = "several" // XDP_ATTACHED_MULTI: one per mode, no single ID
	}
	if e.ID != 0 {
		e.Name = programName(int(e.ID))
	}
	return e
}

// DriverName names the kernel driver of an interface, as ethtool -i does
// (veth, virtio_net, mlx5_core), falling back to the netlink link type.
func DriverName(iface string) string {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		defer unix.Close(fd)
		if info, err := unix.IoctlGetEthtoolDrvinfo(fd, iface); err == nil {
			if d := unix.ByteSliceToString(info.Driver[:]); d != "" {
				return d
			}
		}
	}
	if l, err := netlink.LinkByName(iface); err == nil {
		return l.Type()
	}
	return "unknown"
}

// Close detaches the program. It is safe to call twice.
func (x *XDP) Close() error {
	if x.link == nil {
		return nil
	}
	err := x.link.Close()
	x.link = nil
	if err != nil {
		return fmt.Errorf("detach XDP link: %w", err)
	}
	return nil
}
