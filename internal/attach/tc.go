// Package attach puts the eBPF programs on their hooks and takes them off
// again. Whatever it attaches, it detaches on Close; legacy tc filters, the
// one kind that outlives the process, are also swept up on the next start.
package attach

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TCMode is how TC programs are attached.
type TCMode string

// TC attach modes.
const (
	TCAuto   TCMode = "auto"   // TCX where the kernel has it, else legacy
	TCX      TCMode = "tcx"    // TCX links (kernel 6.6+)
	TCLegacy TCMode = "legacy" // clsact qdisc and cls_bpf filters
)

// filterNamePrefix starts the name of every cls_bpf filter this tool adds.
// The rest of the name is the run ID of the run that added it, whose run
// lock tells a later run a live run's filter from a killed run's leftover
// (runlock.go), then ownsQdiscMark if that run owns the clsact qdisc: it
// created it, or took it over from a killed run that did. A qdisc that
// was there before is never anyone's to remove.
const (
	filterNamePrefix = "pktstat-bpf:"
	ownsQdiscMark    = ":clsact"
)

// filterName is the name of the filters of run id.
func filterName(id string, ownsQdisc bool) string {
	name := filterNamePrefix + id
	if ownsQdisc {
		name += ownsQdiscMark
	}
	return name
}

// TCPrograms are the programs for both directions of one interface.
type TCPrograms struct {
	Ingress, Egress *ebpf.Program
	// What the kernel calls each program, read once by NewTCPrograms:
	// kernels before about 5.14 answer part of it from /proc/self/fdinfo,
	// which a run that has become nobody can no longer read, and -i any
	// attaches to new interfaces after that.
	ids   map[*ebpf.Program]ebpf.ProgramID
	names map[string]bool
}

// NewTCPrograms pairs the ingress and egress programs and reads their ids
// and names, while the process can.
func NewTCPrograms(ingress, egress *ebpf.Program) (TCPrograms, error) {
	p := TCPrograms{Ingress: ingress, Egress: egress, ids: map[*ebpf.Program]ebpf.ProgramID{}, names: map[string]bool{}}
	for _, prog := range []*ebpf.Program{ingress, egress} {
		info, err := prog.Info()
		if err != nil {
			return TCPrograms{}, fmt.Errorf("program info: %w", err)
		}
		id, ok := info.ID()
		if !ok {
			return TCPrograms{}, errors.New("program info: the kernel gives no program id")
		}
		p.ids[prog], p.names[info.Name] = id, true
	}
	return p, nil
}

// TC is an attachment of TC programs to one interface.
type TC struct {
	mode    TCMode
	links   []link.Link
	filters []netlink.FilterAttrs
	// qdisc is the clsact qdisc this run created, or took over from a killed
	// run; nil if it belongs to someone else.
	qdisc netlink.Qdisc
	// lock is held while this run's legacy filters are attached.
	lock *runLock
	log  *slog.Logger
}

// Mode says how the programs ended up attached: TCX or TCLegacy.
func (t *TC) Mode() TCMode { return t.mode }

// AttachTC attaches progs to the interface with index ifindex. Programs run
// first in the chain and never change the packet's fate. In TCAuto mode,
// TCX is tried first and legacy tc is the fallback. In any mode, legacy
// filters left by killed runs of this tool are removed first.
func AttachTC(ifindex int, progs TCPrograms, mode TCMode, log *slog.Logger) (*TC, error) {
	if progs.ids == nil {
		var err error
		if progs, err = NewTCPrograms(progs.Ingress, progs.Egress); err != nil {
			return nil, err
		}
	}
	swept, err := removeStaleFilters(ifindex, progs, log)
	if err != nil {
		return nil, err
	}
	// The clsact qdisc that a killed run created and left is this run's
	// now: Close removes it if nothing else uses it by then.
	t := &TC{log: log, qdisc: swept}
	if mode == TCAuto || mode == TCX {
		err := t.attachTCX(ifindex, progs)
		if err == nil {
			t.mode = TCX
			return t, nil
		}
		if mode == TCX || !errors.Is(err, ebpf.ErrNotSupported) {
			return nil, err
		}
		log.Info("TCX is not supported by this kernel (needs 6.6+); falling back to legacy tc", "error", err)
	}
	if err := t.attachLegacy(ifindex, progs); err != nil {
		if cerr := t.Close(); cerr != nil {
			log.Warn("cleaning up after a failed attach", "error", cerr)
		}
		return nil, err
	}
	t.mode = TCLegacy
	return t, nil
}

func (t *TC) attachTCX(ifindex int, progs TCPrograms) error {
	for _, d := range []struct {
		prog *ebpf.Program
		at   ebpf.AttachType
		name string
	}{
		{progs.Ingress, ebpf.AttachTCXIngress, "ingress"},
		{progs.Egress, ebpf.AttachTCXEgress, "egress"},
	} {
		l, err := link.AttachTCX(link.TCXOptions{
			Interface: ifindex,
			Program:   d.prog,
			Attach:    d.at,
			Anchor:    link.Head(),
		})
		if err != nil {
			t.closeLinks()
			return fmt.Errorf("attach TCX %s: %w", d.name, err)
		}
		t.links = append(t.links, l)
	}
	return nil
}

func (t *TC) attachLegacy(ifindex int, progs TCPrograms) error {
	qdisc, err := findClsact(ifindex)
	if err != nil {
		return err
	}
	if qdisc == nil {
		q := &netlink.GenericQdisc{
			QdiscAttrs: netlink.QdiscAttrs{
				LinkIndex: ifindex,
				Handle:    netlink.MakeHandle(0xffff, 0),
				Parent:    netlink.HANDLE_CLSACT,
			},
			QdiscType: "clsact",
		}
		if err := netlink.QdiscAdd(q); err != nil {
			return fmt.Errorf("add clsact qdisc (is sch_clsact available?): %w", err)
		}
		t.qdisc = q
	}
	if t.lock, err = newRunLock(); err != nil {
		return err
	}
	name := filterName(t.lock.id, t.qdisc != nil)
	for _, d := range []struct {
		prog   *ebpf.Program
		parent uint32
		name   string
	}{
		{progs.Ingress, netlink.HANDLE_MIN_INGRESS, "ingress"},
		{progs.Egress, netlink.HANDLE_MIN_EGRESS, "egress"},
	} {
		prio, err := headPriority(ifindex, d.parent)
		if err != nil {
			return err
		}
		if prio == 0 {
			t.log.Warn("another tc filter has priority 1, so it runs before ours and may hide packets from it", "direction", d.name)
		}
		f := &netlink.BpfFilter{
			FilterAttrs: netlink.FilterAttrs{
				LinkIndex: ifindex,
				Parent:    d.parent,
				Protocol:  unix.ETH_P_ALL,
				// Ahead of every existing filter, so that this one sees
				// packets before another can drop or redirect them.
				Priority: prio,
			},
			Fd:           d.prog.FD(),
			Name:         name,
			DirectAction: true,
		}
		if err := netlink.FilterAdd(f); err != nil {
			return fmt.Errorf("add cls_bpf filter on %s (is cls_bpf available?): %w", d.name, err)
		}
		attrs, err := findFilter(ifindex, d.parent, progs.ids[d.prog], name)
		if err != nil {
			return err
		}
		t.filters = append(t.filters, attrs)
	}
	return nil
}

// headPriority returns a priority that puts a new filter ahead of every
// filter on parent: one less than the lowest in use, or 1 if there is none.
// It returns 0 (let the kernel choose) when priority 1 is taken. The kernel
// itself would not put the filter first: given priority 0, it places the
// new filter after every filter of priority below 0x8000.
func headPriority(ifindex int, parent uint32) (uint16, error) {
	filters, err := listFilters(ifindex, parent)
	if err != nil {
		return 0, err
	}
	lowest := uint16(0)
	for _, f := range filters {
		if p := f.Attrs().Priority; p != 0 && (lowest == 0 || p < lowest) {
			lowest = p
		}
	}
	if lowest == 0 {
		return 1, nil
	}
	return lowest - 1, nil
}

// findFilter returns the kernel's view of the filter just added, which
// holds the priority and handle the kernel picked for it.
func findFilter(ifindex int, parent uint32, id ebpf.ProgramID, name string) (netlink.FilterAttrs, error) {
	filters, err := listFilters(ifindex, parent)
	if err != nil {
		return netlink.FilterAttrs{}, err
	}
	for _, f := range filters {
		if bf, ok := f.(*netlink.BpfFilter); ok && bf.Name == name && ebpf.ProgramID(bf.Id) == id {
			return bf.FilterAttrs, nil
		}
	}
	return netlink.FilterAttrs{}, fmt.Errorf("the cls_bpf filter %q just added is not listed", name)
}

func listFilters(ifindex int, parent uint32) ([]netlink.Filter, error) {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return nil, fmt.Errorf("look up interface %d: %w", ifindex, err)
	}
	fs, err := netlink.FilterList(l, parent)
	if err != nil {
		return nil, fmt.Errorf("list tc filters on %s: %w", l.Attrs().Name, err)
	}
	return fs, nil
}

func findClsact(ifindex int) (netlink.Qdisc, error) {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return nil, fmt.Errorf("look up interface %d: %w", ifindex, err)
	}
	qs, err := netlink.QdiscList(l)
	if err != nil {
		return nil, fmt.Errorf("list qdiscs on %s: %w", l.Attrs().Name, err)
	}
	for _, q := range qs {
		if q.Type() == "clsact" {
			return q, nil
		}
	}
	return nil, nil
}

// removeStaleFilters deletes cls_bpf filters that a killed run of this tool
// left behind: filters running one of our programs (by name) whose owner
// PID is no longer a running pktstat-bpf. Other filters are never touched.
// It returns the clsact qdisc if a removed filter's run owned it, else nil.
func removeStaleFilters(ifindex int, progs TCPrograms, log *slog.Logger) (netlink.Qdisc, error) {
	q, err := findClsact(ifindex)
	if err != nil || q == nil {
		return nil, err
	}
	owned := false
	ours := progs.names
	for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
		filters, err := listFilters(ifindex, parent)
		if err != nil {
			return nil, err
		}
		for _, f := range filters {
			bf, ok := f.(*netlink.BpfFilter)
			if !ok || !strings.HasPrefix(bf.Name, filterNamePrefix) || ownerAlive(bf.Name) {
				continue
			}
			if !ours[programName(bf.Id)] {
				continue
			}
			if err := netlink.FilterDel(&netlink.BpfFilter{FilterAttrs: bf.FilterAttrs}); err != nil {
				return nil, fmt.Errorf("remove stale filter %q (prio %d): %w", bf.Name, bf.Priority, err)
			}
			log.Info("removed a tc filter left by an earlier run", "filter", bf.Name, "program_id", bf.Id)
			owned = owned || strings.HasSuffix(bf.Name, ownsQdiscMark)
		}
	}
	if !owned {
		return nil, nil
	}
	return q, nil
}

func programName(id int) string {
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		return ""
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return ""
	}
	return info.Name
}

// ownerAlive reports whether the run that named a filter name still
// holds its run lock.
func ownerAlive(name string) bool {
	id, _, _ := strings.Cut(strings.TrimPrefix(name, filterNamePrefix), ":")
	return id != "" && runAlive(id)
}

func (t *TC) closeLinks() error {
	errs := detachAll(t.links, "TCX link")
	t.links = nil
	return errors.Join(errs...)
}

// Close detaches exactly what this run attached: its TCX links, its
// cls_bpf filters, and the clsact qdisc if this run created it (or took it
// over from a killed run) and no other filter has joined it since.
func (t *TC) Close() error {
	errs := []error{t.closeLinks()}
	for _, f := range t.filters {
		if err := netlink.FilterDel(&netlink.BpfFilter{FilterAttrs: f}); err != nil && !gone(err) {
			errs = append(errs, fmt.Errorf("remove cls_bpf filter (prio %d): %w", f.Priority, err))
		}
	}
	if t.qdisc != nil {
		ifindex := t.qdisc.Attrs().LinkIndex
		empty := true
		for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
			fs, err := listFilters(ifindex, parent)
			if err != nil || len(fs) > 0 {
				empty = false
			}
		}
		if empty {
			if err := netlink.QdiscDel(t.qdisc); err != nil && !gone(err) {
				errs = append(errs, fmt.Errorf("remove clsact qdisc: %w", err))
			}
		}
	}
	t.filters, t.qdisc = nil, nil
	// The lock goes once the filters are gone, even if some could not be
	// removed: a later run then sweeps what is left.
	t.lock.release()
	t.lock = nil
	return errors.Join(errs...)
}

// gone reports whether a filter or qdisc deletion failed because what it
// deletes is gone already, which counts as deleted: the filter (ENOENT),
// the qdisc that held it (EINVAL: someone ran tc qdisc del), or the
// interface (ENODEV).
func gone(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENODEV)
}
