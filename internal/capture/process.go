package capture

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/attach"
	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/cgroups"
	"github.com/pktstat-bpf/pktstat-bpf/internal/filter"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flowtable"
	"github.com/pktstat-bpf/pktstat-bpf/internal/kernel"
	"github.com/pktstat-bpf/pktstat-bpf/internal/owners"
)

// ProcessBackend is how process mode hooks the kernel (see bpf/process.c).
type ProcessBackend string

// The process-mode backends; ProcessAuto tries them in ProcessBackends'
// order and keeps the first that loads and attaches.
const (
	ProcessAuto       ProcessBackend = "auto"
	ProcessTracepoint ProcessBackend = "tracepoint" // tp_btf sock_send_length/sock_recv_length, Linux 6.3+
	ProcessFentry     ProcessBackend = "fentry"     // fexit on inet{,6}_{send,recv}msg: BPF trampolines
	ProcessKprobe     ProcessBackend = "kprobe"     // kprobe + kretprobe on the same functions: CONFIG_KPROBES
)

// ProcessBackends lists the backends in the order auto tries them.
func ProcessBackends() []ProcessBackend {
	return []ProcessBackend{ProcessTracepoint, ProcessFentry, ProcessKprobe}
}

// DefaultKernelBTF is where the kernel publishes its BTF, which process
// mode's CO-RE programs need.
const DefaultKernelBTF = "/sys/kernel/btf/vmlinux"

// ProcessOptions configure a process-mode capture.
type ProcessOptions struct {
	Backend    ProcessBackend // "" is ProcessAuto
	MaxEntries uint32
	Log        *slog.Logger
	// KernelBTF is checked for before anything loads; "" is
	// DefaultKernelBTF.
	KernelBTF string
	// Filter is the filter expression; nil counts every packet.
	Filter *filter.Filter
	// walkFromUser seeds the owners of existing sockets from /proc even
	// where the kernel accepts the iterator, so that tests reach that path
	// on every kernel.
	walkFromUser bool
	// layout is the flow table's; Default (the zero value) is this
	// kernel's, as the tool runs. Benchmarks compare the others.
	layout flowtable.Layout
}

// BackendAttempt is one backend that StartProcess tried, and why it could
// not be used (nil for the one in use).
type BackendAttempt struct {
	Backend ProcessBackend
	Err     error
}

// hookKind says how a program of process.c is attached.
type hookKind int

const (
	hookBTF       hookKind = iota // tp_btf, fentry, fexit: the target is in the program
	hookKprobe                    // kprobe on each of symbols
	hookKretprobe                 // kretprobe on each of symbols
	hookIter                      // iterator: run once, where it stands in the list
	hookCgroup                    // on the cgroup v2 root, at attach type at
)

// hook is one program of a backend and where it goes.
type hook struct {
	prog    string
	kind    hookKind
	symbols []string
	at      ebpf.AttachType
}

// Program names in bpf/process.c.
const (
	progSock    = "pktstat_proc_sock"
	progSeed    = "pktstat_seed"
	progListen  = "pktstat_listen"
	progIn      = "pktstat_proc_in"
	progOut     = "pktstat_proc_out"
	progTPSend  = "pktstat_tp_send"
	progTPRecv  = "pktstat_tp_recv"
	progFxSend  = "pktstat_fx_send"
	progFxSend6 = "pktstat_fx_send6"
	progFxRecv  = "pktstat_fx_recv"
	progFxRecv6 = "pktstat_fx_recv6"
	progKpSend  = "pktstat_kp_send"
	progKpSendR = "pktstat_kp_send_ret"
	progKpRecv  = "pktstat_kp_recv"
	progKpRecvR = "pktstat_kp_recv_ret"
)

// backendHooks lists a backend's programs in attach order. Every backend
// starts alike: sock_create first, so that each socket created from then
// on records its creator; then the walk that gives the sockets that exist
// already their holder. Then the backend's TCP hooks, and last the
// programs that count datagrams, which read the owners recorded before.
func backendHooks(b ProcessBackend) []hook {
	var tcp []hook
	switch b {
	case ProcessTracepoint:
		tcp = []hook{{prog: progListen}, {prog: progTPSend}, {prog: progTPRecv}}
	case ProcessFentry:
		// inet_sock_set_state is a tp_btf too: BPF trampolines are not
		// needed for it, and it exists on every kernel fentry works on.
		tcp = []hook{{prog: progListen}, {prog: progFxSend}, {prog: progFxSend6}, {prog: progFxRecv}, {prog: progFxRecv6}}
	case ProcessKprobe:
		send := []string{"inet_sendmsg", "inet6_sendmsg"}
		recv := []string{"inet_recvmsg", "inet6_recvmsg"}
		tcp = []hook{
			{prog: progKpSend, kind: hookKprobe, symbols: send},
			{prog: progKpSendR, kind: hookKretprobe, symbols: send},
			{prog: progKpRecv, kind: hookKprobe, symbols: recv},
			{prog: progKpRecvR, kind: hookKretprobe, symbols: recv},
		}
	default:
		return nil
	}
	hooks := []hook{
		{prog: progSock, kind: hookCgroup, at: ebpf.AttachCGroupInetSockCreate},
		{prog: progSeed, kind: hookIter},
	}
	hooks = append(hooks, tcp...)
	return append(hooks,
		hook{prog: progIn, kind: hookCgroup, at: ebpf.AttachCGroupInetIngress},
		hook{prog: progOut, kind: hookCgroup, at: ebpf.AttachCGroupInetEgress},
	)
}

// Process counts the TCP, UDP, ICMP and ICMPv6 traffic of every process on
// the host, in every network namespace, with each row's owner: the PID and
// name of the process that owns the socket, and the socket's cgroup.
type Process struct {
	session[bpfprog.OwnedFlowKey]
	backend ProcessBackend
	tried   []BackendAttempt
	coll    *ebpf.Collection
	links   attach.Tracing
	cg      *attach.Cgroup // the cgroup v2 root, with the socket and datagram programs
	// seed is the iterator that gives existing sockets their owners; nil
	// where the kernel refuses it, and then /proc is walked instead.
	seed  *ebpf.Program
	names *cgroups.IDResolver
	log   *slog.Logger
}

// CheckKernelBTF fails with one line when the kernel publishes no BTF at
// path: process mode's programs read kernel structures through CO-RE.
func CheckKernelBTF(path string) error {
	if path == "" {
		path = DefaultKernelBTF
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("process mode needs the kernel's BTF, and %s does not exist: use a kernel built with CONFIG_DEBUG_INFO_BTF=y", path)
		}
		return fmt.Errorf("process mode needs the kernel's BTF: %w", err)
	}
	return nil
}

// StartProcess loads and attaches the first backend that works, or the
// one o.Backend names. Counting starts when it returns; Backend says which
// backend it is, Tried what was tried before it.
func StartProcess(o ProcessOptions) (*Process, error) {
	if err := checkMemory(o.MaxEntries); err != nil {
		return nil, err
	}
	if err := CheckKernelBTF(o.KernelBTF); err != nil {
		return nil, err
	}
	log := orDiscard(o.Log)
	spec, err := processSpec(o.MaxEntries, o.layout)
	if err != nil {
		return nil, err
	}
	if err := applyFilter(spec, o.Filter); err != nil {
		return nil, err
	}
	backends := ProcessBackends()
	if o.Backend != "" && o.Backend != ProcessAuto {
		if backendHooks(o.Backend) == nil {
			return nil, fmt.Errorf("unknown process backend %q", o.Backend)
		}
		backends = []ProcessBackend{o.Backend}
	}
	// UDP and ICMP are counted on the cgroup v2 root (see bpf/process.c),
	// and the same mount names the rows' cgroups.
	names, err := cgroups.NewIDResolver(cgroups.DefaultMaxDirs)
	if err != nil {
		return nil, fmt.Errorf("process mode counts UDP and ICMP with programs on the cgroup v2 root: %w", err)
	}
	if !names.UsesHandles() {
		log.Warn("cgroup ids are named by walking the cgroup tree: open_by_handle_at was refused (it needs CAP_DAC_READ_SEARCH)", "mount", names.Mount())
	}

	var tried []BackendAttempt
	for _, b := range backends {
		p := &Process{backend: b, names: names, log: log}
		err := p.start(spec, o.walkFromUser)
		if err == nil {
			p.tried = append(tried, BackendAttempt{Backend: b})
			return p, nil
		}
		tried = append(tried, BackendAttempt{Backend: b, Err: err})
		if len(backends) > 1 {
			log.Info("process backend unavailable", "backend", string(b), "error", err)
		}
	}
	names.Close()
	// One %w per backend keeps every cause reachable (a verifier's log for
	// --debug, an errno for errors.Is).
	parts := make([]string, len(tried))
	errs := make([]any, len(tried))
	for i, t := range tried {
		parts[i] = string(t.Backend) + ": %w"
		errs[i] = t.Err
	}
	return nil, fmt.Errorf("no process backend works on this kernel ("+strings.Join(parts, "; ")+")", errs...)
}

// ProcessSpec loads the process object's spec with its flow table sized
// to maxEntries, in the layout for this machine.
func ProcessSpec(maxEntries uint32) (*ebpf.CollectionSpec, error) {
	return processSpec(maxEntries, flowtable.Default)
}

// processSpec is ProcessSpec in layout (Default: this kernel's).
func processSpec(maxEntries uint32, layout flowtable.Layout) (*ebpf.CollectionSpec, error) {
	return sizedSpec(loadProcessSpec, "process", maxEntries, layout)
}

// loadBackend loads the programs of backend b (and every map) from spec;
// the other backends' programs are not loaded, and neither is the
// start-up iterator, which loadSeed loads on its own.
func loadBackend(spec *ebpf.CollectionSpec, b ProcessBackend) (*ebpf.Collection, error) {
	s := spec.Copy()
	keep := map[string]bool{}
	for _, h := range backendHooks(b) {
		keep[h.prog] = h.kind != hookIter
	}
	for name := range s.Programs {
		if !keep[name] {
			delete(s.Programs, name)
		}
	}
	coll, err := ebpf.NewCollection(s)
	if err != nil {
		if b == ProcessFentry && errors.Is(err, unix.EPERM) && os.Geteuid() == 0 {
			return nil, fmt.Errorf("load: the kernel refuses fentry/fexit programs (EPERM as root: BPF trampolines are not allowed here; the MEMLOCK hint does not apply): %w", err)
		}
		if r := kernel.AsRefusal(err); r != nil {
			return nil, r
		}
		return nil, fmt.Errorf("load: %w", err)
	}
	return coll, nil
}

// loadSeed loads the start-up iterator (pktstat_seed) on the maps of coll.
// It is optional: a walk of /proc from user space finds the same owners.
// Some kernels refuse it: 5.10 has no bpf_sock_from_file, and the verifier
// of 6.18.44 marks the sock of the socket (sock->sk) untrusted, which
// bpf_sk_storage_get does not take.
func loadSeed(spec *ebpf.CollectionSpec, coll *ebpf.Collection) (*ebpf.Program, error) {
	s := spec.Copy()
	for name := range s.Programs {
		if name != progSeed {
			delete(s.Programs, name)
		}
	}
	maps := make(map[string]*ebpf.Map, len(s.Maps))
	for name := range s.Maps {
		if m := coll.Maps[name]; m != nil {
			maps[name] = m
		}
	}
	c, err := ebpf.NewCollectionWithOptions(s, ebpf.CollectionOptions{MapReplacements: maps})
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", progSeed, err)
	}
	prog := c.Programs[progSeed]
	delete(c.Programs, progSeed)
	c.Close()
	return prog, nil
}

// start loads the backend's programs, attaches them and seeds the owners
// of the sockets that exist already: with the iterator where the kernel
// takes it, and otherwise from /proc (unless walkFromUser, always from
// /proc).
func (p *Process) start(spec *ebpf.CollectionSpec, walkFromUser bool) error {
	coll, err := loadBackend(spec, p.backend)
	if err != nil {
		return err
	}
	p.coll = coll
	p.free = p.freeObjects
	p.namer = owners.NewNamer(p.names, coll.Maps["comms"], p.log)
	if !walkFromUser {
		if p.seed, err = loadSeed(spec, coll); err != nil {
			p.log.Debug("the kernel refuses the iterator that finds the owners of existing sockets; they are read from /proc instead",
				"error", err)
		}
	}
	p.table, err = flowtable.New(flowtable.Maps{
		Slot:      coll.Maps["flow_tables"],
		Flows:     coll.Maps["flows"],
		Untracked: coll.Maps["untracked"],
		HLL:       coll.Maps["untracked_hll"],
		Filtered:  coll.Maps["filtered"],
		Gen:       coll.Variables["untracked_gen"],
		Rows:      coll.Variables["array_rows"],
	}, spec.Maps["flows"], p.namer.Key)
	if err != nil {
		return errors.Join(err, p.session.Close())
	}
	p.detach = p.detachAll
	if err := p.attach(true); err != nil {
		return errors.Join(err, p.session.Close())
	}
	return nil
}

// attach attaches the backend's programs in order, with the start-up walk
// of existing sockets if seed is set.
func (p *Process) attach(seed bool) error {
	for _, h := range backendHooks(p.backend) {
		prog := p.coll.Programs[h.prog]
		var err error
		switch h.kind {
		case hookBTF:
			err = p.links.AttachBTF(prog, h.prog)
		case hookKprobe, hookKretprobe:
			for _, sym := range h.symbols {
				if err = p.links.AttachKprobe(prog, sym, h.kind == hookKretprobe); err != nil {
					break
				}
			}
		case hookIter:
			if !seed {
				continue
			}
			err = p.seedOwners()
		case hookCgroup:
			if p.cg == nil {
				if p.cg, err = attach.OpenCgroup(p.names.Mount()); err != nil {
					break
				}
			}
			err = p.cg.Attach(prog, h.at)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// seedOwners gives the sockets that exist already their holders: the
// iterator if it loaded, or else a walk of /proc.
func (p *Process) seedOwners() error {
	if p.seed != nil {
		if err := attach.RunIter(p.seed, progSeed); err != nil {
			return err
		}
		p.log.Debug("recorded the owners of the sockets that exist already")
		return nil
	}
	pids, err := owners.HostPIDs()
	if err != nil {
		return err
	}
	return owners.Seed(pids, p.coll.Maps["proc_owners"], p.coll.Maps["comms"], p.log)
}

// detachAll detaches every program; attach can attach them again.
func (p *Process) detachAll() error {
	errs := []error{p.links.Close()}
	if p.cg != nil {
		errs = append(errs, p.cg.Close())
		p.cg = nil
	}
	return errors.Join(errs...)
}

// Backend is the backend in use.
func (p *Process) Backend() ProcessBackend { return p.backend }

// Tried lists the backends tried, in order, the one in use last.
func (p *Process) Tried() []BackendAttempt { return p.tried }

// KprobeLosses are the TCP calls the kprobe backend saw but could not
// count: Returns whose kretprobe the kernel did not run (it had no return
// instance left, maxactive), and Calls whose return came without the call
// (its kprobe was missed, or its entry was evicted from the full call
// table).
type KprobeLosses struct {
	Returns, Calls uint64
}

// KprobeLosses adds up the kprobe backend's lost calls on every CPU so
// far; zero with any other backend.
func (p *Process) KprobeLosses() (KprobeLosses, error) {
	if p.backend != ProcessKprobe || p.coll == nil {
		return KprobeLosses{}, nil
	}
	m := p.coll.Maps["kp_lost"]
	if m == nil {
		return KprobeLosses{}, errors.New("the process object has no kp_lost map")
	}
	var sums [2]uint64
	for reason := range sums {
		var perCPU []uint64
		if err := m.Lookup(uint32(reason), &perCPU); err != nil {
			return KprobeLosses{}, fmt.Errorf("read the kprobe backend's lost calls: %w", err)
		}
		for _, n := range perCPU {
			sums[reason] += n
		}
	}
	return KprobeLosses{Returns: sums[0], Calls: sums[1]}, nil
}

// Close detaches the programs and frees the kernel objects and the
// cgroup resolver. The kprobe backend says first how many TCP calls it
// could not count, if any.
func (p *Process) Close() error {
	if lost, err := p.KprobeLosses(); err != nil {
		p.log.Warn("could not read the kprobe backend's lost calls", "error", err)
	} else if lost.Returns+lost.Calls > 0 {
		p.log.Warn("the kprobe backend could not count some TCP calls: their bytes are missing from the report",
			"calls", lost.Returns+lost.Calls, "return_missed", lost.Returns, "call_missed_or_evicted", lost.Calls)
	}
	err := p.session.Close()
	if p.names != nil {
		p.names.Close()
		p.names = nil
	}
	return err
}

// freeObjects frees the kernel objects of the backend, but not the cgroup
// resolver, which StartProcess hands from one backend it tries to the
// next.
func (p *Process) freeObjects() error {
	if p.coll != nil {
		p.coll.Close()
		p.coll = nil
	}
	if p.seed != nil {
		p.seed.Close()
		p.seed = nil
	}
	return nil
}

// Describe names the mode and its backend.
func (p *Process) Describe() string { return "process/" + string(p.backend) }

// Programs returns the capture's eBPF programs by name.
func (p *Process) Programs() map[string]*ebpf.Program {
	out := map[string]*ebpf.Program{}
	if p.coll != nil {
		for name, prog := range p.coll.Programs {
			out[name] = prog
		}
	}
	return out
}
