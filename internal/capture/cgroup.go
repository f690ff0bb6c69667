package capture

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/pktstat-bpf/pktstat-bpf/internal/attach"
	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/cgroups"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// CgroupOptions configure a cgroup capture.
type CgroupOptions struct {
	Dir        cgroups.Dir // the cgroup v2 directory to watch (cgroups.Open)
	MaxEntries uint32
	Log        *slog.Logger
}

// Cgroup counts the traffic of the sockets in one cgroup v2 directory and
// below it, both directions, with the owner of each socket on its rows.
type Cgroup struct {
	objs   bpfprog.CgroupObjects
	table  *table[bpfprog.OwnedFlowKey]
	cg     *attach.Cgroup
	dir    cgroups.Dir
	names  *cgroups.Resolver
	log    *slog.Logger
	closed bool
	// rowCgroups holds the cgroup id of each row of the drain under way.
	rowCgroups []uint64
}

// StartCgroup loads the cgroup programs and attaches them. Counting starts
// when it returns.
//
// The order makes every socket's rows carry one owner from its first
// counted packet on: sock_create is attached first, so that every socket
// created from then on records its creator; then the sockets that already
// exist get the process that holds them (seedOwners); only then are the
// counting programs attached.
func StartCgroup(o CgroupOptions) (*Cgroup, error) {
	if err := checkTableMemory(o.MaxEntries); err != nil {
		return nil, err
	}
	spec, err := bpfprog.LoadCgroup()
	if err != nil {
		return nil, fmt.Errorf("load cgroup object: %w", err)
	}
	sizeFlowTables(spec, o.MaxEntries)
	mptcp, err := ProbeMPTCPOwner()
	if err != nil {
		return nil, err
	}
	if err := spec.Variables[bpfprog.CgroupVarMptcpAware].Set(mptcp); err != nil {
		return nil, fmt.Errorf("set mptcp_aware: %w", err)
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cgroup{dir: o.Dir, log: log}
	if err := spec.LoadAndAssign(&c.objs, nil); err != nil {
		return nil, loadError(err, o.MaxEntries)
	}
	c.table, err = newTable(tableMaps{
		Slot:      c.objs.FlowTables,
		Flows:     c.objs.Flows,
		Untracked: c.objs.Untracked,
		HLL:       c.objs.UntrackedHll,
		Gen:       c.objs.UntrackedGen,
	}, spec.Maps[bpfprog.CgroupMapFlows], c.ownedKey)
	if err != nil {
		c.objs.Close()
		return nil, err
	}
	if err := c.start(); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return c, nil
}

// ProbeMPTCPOwner reports whether cgroup_skb programs may call
// bpf_skc_to_mptcp_sock (Linux 5.19+, and CAP_PERFMON), which finds the
// MPTCP socket, and with it the owner, of a subflow. Without it, traffic of
// MPTCP sockets is counted without a PID. Go's net.Listen makes MPTCP
// listeners by default since Go 1.24, so this is not rare.
func ProbeMPTCPOwner() (bool, error) {
	return haveHelper(ebpf.CGroupSKB, asm.FnSkcToMptcpSock, "bpf_skc_to_mptcp_sock")
}

func (c *Cgroup) start() error {
	var err error
	c.names, err = cgroups.NewResolver(c.dir.Path, cgroups.DefaultMaxDirs)
	if err != nil {
		return err
	}
	if c.cg, err = attach.OpenCgroup(c.dir.Path); err != nil {
		return err
	}
	if err := c.cg.Attach(c.objs.PktstatCgSock, ebpf.AttachCGroupInetSockCreate); err != nil {
		return err
	}
	pids, err := cgroups.Procs(c.dir.Path, cgroups.DefaultMaxDirs)
	if err != nil {
		return err
	}
	if err := seedAndReport(pids, c.objs.SockOwners, c.objs.Comms, c.log); err != nil {
		return err
	}
	if err := c.cg.Attach(c.objs.PktstatCgIn, ebpf.AttachCGroupInetIngress); err != nil {
		return err
	}
	return c.cg.Attach(c.objs.PktstatCgOut, ebpf.AttachCGroupInetEgress)
}

// Path is the watched cgroup directory.
func (c *Cgroup) Path() string { return c.dir.Path }

// Stop detaches the programs; counting ends, and the table stays readable.
func (c *Cgroup) Stop() error {
	if c.closed {
		return nil
	}
	c.closed = true
	if c.cg == nil {
		return nil
	}
	return c.cg.Close()
}

// Close detaches the programs and frees the kernel objects.
func (c *Cgroup) Close() error {
	errs := []error{c.Stop()}
	if c.table != nil {
		errs = append(errs, c.table.close())
	}
	return errors.Join(append(errs, c.objs.Close())...)
}

// Describe names the mode.
func (c *Cgroup) Describe() string { return "cgroup" }

// Drain returns every count since the previous Drain, with each row's
// owner named: the process name from the comms map (or /proc, for a name
// the map has forgotten) and the cgroup's path from its id.
func (c *Cgroup) Drain() (flow.Snapshot, error) {
	c.rowCgroups = c.rowCgroups[:0]
	s, err := c.table.drain(nil)
	if err != nil {
		return flow.Snapshot{}, err
	}
	nameOwners(&s, c.rowCgroups, c.names, c.objs.Comms, c.log)
	return s, nil
}

// ownedKey converts a cgroup-mode key into the model's key with the
// owner's PID, and notes the row's cgroup id for Drain to name.
func (c *Cgroup) ownedKey(k *bpfprog.OwnedFlowKey) flow.Key {
	return ownedKey(k, &c.rowCgroups)
}
