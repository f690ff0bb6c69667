package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"

	"github.com/pktstat-bpf/pktstat-bpf/internal/kernel"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
)

// What the tool has attached, on interfaces and cgroups, and the programs
// it holds: what must be there while it runs and gone after it.

// Our programs' names, as the kernel reports them.
const (
	IngressProgName = "pktstat_ingress"
	EgressProgName  = "pktstat_egress"
)

// TCXProgram is a program attached to a TCX hook, in chain order.
type TCXProgram struct {
	ID   ebpf.ProgramID
	Name string
}

// TCXChain lists the programs on e's veth at hook (AttachTCXIngress or
// AttachTCXEgress), first to run first.
func TCXChain(e testnet.End, hook ebpf.AttachType) ([]TCXProgram, error) {
	var out []TCXProgram
	err := e.Do(func() error {
		res, err := link.QueryPrograms(link.QueryOptions{Target: e.Index, Attach: hook})
		if err != nil {
			return err
		}
		for _, ap := range res.Programs {
			name := "?"
			if p, err := ebpf.NewProgramFromID(ap.ID); err == nil {
				if info, err := p.Info(); err == nil {
					name = info.Name
				}
				p.Close()
			}
			out = append(out, TCXProgram{ap.ID, name})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("query TCX %v programs of %s: %w", hook, e.Link, err)
	}
	return out, nil
}

// OurTCX returns the names of our programs attached through TCX on e.
func OurTCX(t *testing.T, e testnet.End) []string {
	t.Helper()
	if release, err := kernel.Release(); err == nil && kernel.Before(release, 6, 6) {
		// No TCX before 6.6 (the kernel refuses the query): nothing of
		// ours can be attached through it.
		return nil
	}
	var ours []string
	for _, hook := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
		chain, err := TCXChain(e, hook)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range chain {
			if p.Name == IngressProgName || p.Name == EgressProgName {
				ours = append(ours, fmt.Sprintf("%v:%s(id %d)", hook, p.Name, p.ID))
			}
		}
	}
	return ours
}

// XDPProgName is our XDP program's name, as the kernel reports it.
const XDPProgName = "pktstat_xdp"

// XDPAttached is the XDP program on an interface, as netlink reports it.
type XDPAttached struct {
	ID   ebpf.ProgramID // 0: none
	Name string
	Mode string // native, generic, offload
}

func (a XDPAttached) String() string {
	if a.ID == 0 {
		return "no XDP program"
	}
	return fmt.Sprintf("XDP program %d %q (%s)", a.ID, a.Name, a.Mode)
}

// XDPOn reports the XDP program on the interface ifname in e's namespace.
func XDPOn(t *testing.T, e testnet.End, ifname string) XDPAttached {
	t.Helper()
	var a XDPAttached
	err := e.Do(func() error {
		l, err := netlink.LinkByName(ifname)
		if err != nil {
			return err
		}
		x := l.Attrs().Xdp
		if x == nil || !x.Attached {
			return nil
		}
		a.ID = ebpf.ProgramID(x.ProgId)
		a.Mode = map[uint32]string{nl.XDP_ATTACHED_DRV: "native", nl.XDP_ATTACHED_SKB: "generic", nl.XDP_ATTACHED_HW: "offload"}[x.AttachMode]
		p, err := ebpf.NewProgramFromID(a.ID)
		if err != nil {
			return fmt.Errorf("open program %d: %w", a.ID, err)
		}
		defer p.Close()
		info, err := p.Info()
		if err != nil {
			return err
		}
		a.Name = info.Name
		return nil
	})
	if err != nil {
		t.Fatalf("query XDP on %s in %s: %v", ifname, e.NS, err)
	}
	return a
}

// WaitNoXDP polls until ifname has no XDP program: a link goes away with
// the last file descriptor of its process, which may lag the exit.
func WaitNoXDP(t *testing.T, e testnet.End, ifname string) {
	t.Helper()
	begin := time.Now()
	for deadline := begin.Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		a := XDPOn(t, e, ifname)
		if a.ID == 0 {
			t.Logf("%s: no XDP program left, %v after exit", ifname, time.Since(begin).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still has %v", ifname, a)
		}
	}
}

// WantNothingAttached polls briefly (links are released with the process's
// last file descriptor) and fails if a program is still on the cgroup.
func WantNothingAttached(t *testing.T, dir, after string) {
	t.Helper()
	begin := time.Now()
	var left map[ebpf.AttachType][]ebpf.ProgramID
	for deadline := begin.Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		left = testnet.CgroupPrograms(t, dir)
		n := 0
		for _, ids := range left {
			n += len(ids)
		}
		if n == 0 {
			t.Logf("after %s: no program on %s (checked %v after exit)", after, dir, time.Since(begin).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, still attached to %s: %v", after, dir, left)
		}
	}
}

// ToolPrograms returns the IDs of the eBPF programs that process pid holds,
// through program and link descriptors, from /proc/PID/fdinfo.
func ToolPrograms(t *testing.T, pid int) []ebpf.ProgramID {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fdinfo", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[ebpf.ProgramID]bool{}
	var ids []ebpf.ProgramID
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(raw), "\n") {
			v, ok := strings.CutPrefix(line, "prog_id:")
			if !ok {
				continue
			}
			id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
			if err == nil && !seen[ebpf.ProgramID(id)] {
				seen[ebpf.ProgramID(id)] = true
				ids = append(ids, ebpf.ProgramID(id))
			}
		}
	}
	return ids
}

// WantProgramsGone polls briefly: programs are freed with the last link
// and file descriptor that hold them.
func WantProgramsGone(t *testing.T, ids []ebpf.ProgramID) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var left []ebpf.ProgramID
		for _, id := range ids {
			if prog, err := ebpf.NewProgramFromID(id); err == nil {
				prog.Close()
				left = append(left, id)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("programs %v of the tool are still loaded after it exited", left)
		}
	}
}
