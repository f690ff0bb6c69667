package capture

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/cgroups"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flowtable"
	"github.com/pktstat-bpf/pktstat-bpf/internal/owners"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/bpftest"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
)

// cgPass is what a cgroup_skb program returns to let a packet pass.
const cgPass = 1

// ethLen is the Ethernet header that BPF_PROG_TEST_RUN strips from the
// frame before a cgroup_skb program sees it (eth_type_trans): the program
// starts at the IP header, as it does on a real socket's path.
const ethLen = 14

// resetCgroup empties the flow table and the untracked counters.
func resetCgroup(t testing.TB, objs *bpfprog.CgroupObjects) {
	t.Helper()
	if objs.Flows.Type() == ebpf.Array {
		// Every slot free, and no rows given out.
		zero := make([]byte, objs.Flows.ValueSize())
		for i := range objs.Flows.MaxEntries() {
			if err := objs.Flows.Put(i, zero); err != nil {
				t.Fatalf("free flow table slot %d: %v", i, err)
			}
		}
	}
	var key bpfprog.OwnedFlowKey
	for objs.Flows.Type() != ebpf.Array {
		err := objs.Flows.NextKey(nil, &key)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			break
		}
		if err != nil {
			t.Fatalf("iterate flow table: %v", err)
		}
		if err := objs.Flows.Delete(&key); err != nil {
			t.Fatalf("delete flow: %v", err)
		}
	}
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	for i := range objs.Untracked.MaxEntries() {
		if err := objs.Untracked.Put(i, make([]bpfprog.FlowVal, cpus)); err != nil {
			t.Fatalf("zero untracked counters: %v", err)
		}
	}
}

// rawRow is one entry of the cgroup flow table, per-CPU slots summed.
type rawRow struct {
	key bpfprog.OwnedFlowKey
	c   flow.Counters
}

func readRaw(t testing.TB, objs *bpfprog.CgroupObjects) []rawRow {
	t.Helper()
	var out []rawRow
	iterateFlows(t, objs.Flows, func(k *bpfprog.OwnedFlowKey, vals []bpfprog.FlowVal) {
		var c flow.Counters
		for _, v := range vals {
			c.Add(flow.Counters{Packets: v.Packets, Bytes: v.Bytes})
		}
		out = append(out, rawRow{key: *k, c: c})
	})
	return out
}

// selfCgroupID is the id of the cgroup v2 group this test process is in,
// read from /proc/self/cgroup ("0::/path") and the directory's inode.
func selfCgroupID(t testing.TB) uint64 {
	t.Helper()
	mounts := cgroups.Mounts("cgroup2")
	if len(mounts) == 0 {
		t.Skip("skipped: no cgroup v2 hierarchy is mounted")
	}
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rel, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			id, err := cgroups.ID(filepath.Join(mounts[0], rel))
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
	}
	t.Fatal("/proc/self/cgroup has no cgroup v2 line")
	return 0
}

// TestCgroupKeyLayout checks the generated types against the object's maps
// and the embedded flow key against the one TC and XDP use: the kernel
// hashes keys as raw bytes, so a hidden gap would split rows.
func TestCgroupKeyLayout(t *testing.T) {
	spec, err := bpfprog.LoadCgroup()
	if err != nil {
		t.Fatal(err)
	}
	var k bpfprog.OwnedFlowKey
	for _, c := range []struct {
		what      string
		got, want uintptr
	}{
		{"flows key", unsafe.Sizeof(k), uintptr(spec.Maps[bpfprog.CgroupMapFlows].KeySize)},
		{"flows value", unsafe.Sizeof(bpfprog.FlowVal{}), uintptr(spec.Maps[bpfprog.CgroupMapFlows].ValueSize)},
		{"embedded flow_key", unsafe.Sizeof(k.Flow), unsafe.Sizeof(bpfprog.FlowKey{})},
		{"pid offset", unsafe.Offsetof(k.Pid), unsafe.Sizeof(bpfprog.FlowKey{})},
		{"explicit pad offset", unsafe.Offsetof(k.Pad), unsafe.Sizeof(bpfprog.FlowKey{}) + 4},
		{"cgroup_id offset", unsafe.Offsetof(k.CgroupId), unsafe.Sizeof(bpfprog.FlowKey{}) + 8},
		{"key size, no tail padding", unsafe.Sizeof(k), unsafe.Sizeof(bpfprog.FlowKey{}) + 8 + 8},
		{"sock_owners value", unsafe.Sizeof(bpfprog.SockOwner{}), uintptr(spec.Maps[bpfprog.CgroupMapSockOwners].ValueSize)},
		{"comms value", unsafe.Sizeof(bpfprog.OwnerComm{}), uintptr(spec.Maps[bpfprog.CgroupMapComms].ValueSize)},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.what, c.got, c.want)
		}
	}
	if f := spec.Maps[bpfprog.CgroupMapSockOwners].Flags; f&unix.BPF_F_CLONE == 0 {
		t.Errorf("sock_owners flags %#x lack BPF_F_CLONE: accepted sockets would have no owner", f)
	}
}

// TestCgroupParserTable runs every IP frame of the shared parser table
// through pktstat_cg_in and pktstat_cg_out. Each must make one row whose
// flow is gopacket's reading of the frame, whose bytes are the IP packet
// (the frame without its Ethernet header), and whose owner is what a
// socket without a recorded owner gets: PID 0 and the socket's cgroup.
// (BPF_PROG_TEST_RUN gives the skb a socket of its own, created by this
// process, so its cgroup is this process's.)
func TestCgroupParserTable(t *testing.T) {
	objs := loadObjects[bpfprog.CgroupObjects](t, objectSpec(t, bpfprog.LoadCgroup), testLoad{maxEntries: 64})
	cgid := selfCgroupID(t)
	progs := []hookProg{
		{bpfprog.CgroupProgPktstatCgIn, objs.PktstatCgIn, flow.In},
		{bpfprog.CgroupProgPktstatCgOut, objs.PktstatCgOut, flow.Out},
	}
	ran := 0
	for _, c := range bpftest.Cases(t) {
		want, err := expectedCgroupKey(c.Frame)
		if err != nil {
			t.Fatalf("%s: oracle: %v", c.Name, err)
		}
		// A cgroup_skb hook sees IP packets only, after any VLAN tag is
		// gone: the other frames of the table cannot reach it.
		if !want.IsIP() || c.VLAN != 0 {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			for _, p := range progs {
				resetCgroup(t, objs)
				ret, err := p.prog.Run(&ebpf.RunOptions{Data: c.Frame})
				if err != nil {
					t.Fatalf("run %s: %v", p.name, err)
				}
				if ret != cgPass {
					t.Errorf("%s returned %d, want %d (let the packet pass)", p.name, ret, cgPass)
				}
				rows := readRaw(t, objs)
				if len(rows) != 1 {
					t.Fatalf("%s: %d rows, want 1: %+v", p.name, len(rows), rows)
				}
				r := rows[0]
				want.Dir = p.dir
				if got := flowtable.OwnedKeyFromBPF(&r.key); got != want {
					t.Errorf("%s: flow %+v, gopacket reads %+v", p.name, got, want)
				}
				if r.key.Pid != 0 || r.key.CgroupId != cgid {
					t.Errorf("owner pid %d cgroup %d, want pid 0 (none recorded) and cgroup %d (this process's)", r.key.Pid, r.key.CgroupId, cgid)
				}
				l3 := uint64(len(c.Frame) - ethLen)
				if r.c != (flow.Counters{Packets: 1, Bytes: l3}) {
					t.Errorf("%s: counters %+v, want 1 packet of %d bytes", p.name, r.c, l3)
				}
			}
		})
		ran++
	}
	if ran < 10 {
		t.Fatalf("only %d cases of the table are IP frames without a VLAN tag", ran)
	}
}

// TestCgroupGSOAccounting checks that a GSO skb counts as its segments,
// each carrying its own IP and L4 headers, as on the wire: the arithmetic
// that TC shares (bpf/include/skb.h), with L3 header lengths.
func TestCgroupGSOAccounting(t *testing.T) {
	objs := loadObjects[bpfprog.CgroupObjects](t, objectSpec(t, bpfprog.LoadCgroup), testLoad{maxEntries: 64})
	udp6 := bpftest.Frame(t, bpftest.Eth(layers.EthernetTypeIPv6), bpftest.IPv6(layers.IPProtocolUDP),
		bpftest.UDP(), bpftest.Payload(1200))
	// The first cases are TestTCGSOAccounting's on purpose: the same skbs,
	// counted here with L3 lengths.
	for _, tc := range []gsoCase{
		{name: "tcp4-segs-45", frame: tcp4Frame(t, 1448), segs: 45, size: 1448, wantSegs: 45},
		{name: "tcp6-segs-3", frame: tcp6Frame(t, 1428), segs: 3, size: 1428, wantSegs: 3},
		{name: "udp6-segs-10", frame: udp6, segs: 10, size: 1200, wantSegs: 10},
		{name: "tcp4-derived-round-up", frame: tcp4Frame(t, 2*1448+100), size: 1448},
		{name: "tcp6-derived-exact", frame: tcp6Frame(t, 2*1000), size: 1000},
		{name: "tcp4-no-gso", frame: tcp4Frame(t, 1448), wantSegs: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := expectedCgroupKey(tc.frame)
			if err != nil {
				t.Fatal(err)
			}
			hdr, err := bpftest.HeaderLen(tc.frame)
			if err != nil {
				t.Fatal(err)
			}
			l3hdr := uint64(hdr - ethLen) // IP + L4 headers, repeated per segment
			l3 := uint64(len(tc.frame) - ethLen)
			segs := tc.wantSegs
			if segs == 0 {
				segs = (l3 - l3hdr + uint64(tc.size) - 1) / uint64(tc.size)
			}
			perRun := flow.Counters{Packets: segs, Bytes: l3 + (segs-1)*l3hdr}
			t.Logf("IP packet %d bytes, headers %d, gso_segs %d, gso_size %d: %d packets, %d bytes per run",
				l3, l3hdr, tc.segs, tc.size, perRun.Packets, perRun.Bytes)
			ctx := &bpftest.SkBuff{GSOSegs: tc.segs, GSOSize: tc.size}
			for _, p := range []hookProg{{"in", objs.PktstatCgIn, flow.In}, {"out", objs.PktstatCgOut, flow.Out}} {
				resetCgroup(t, objs)
				if ret := bpftest.Run(t, p.prog, tc.frame, ctx); ret != cgPass {
					t.Errorf("%s returned %d, want %d", p.name, ret, cgPass)
				}
				want.Dir = p.dir
				rows := readRaw(t, objs)
				if len(rows) != 1 || flowtable.OwnedKeyFromBPF(&rows[0].key) != want {
					t.Fatalf("%s: rows %+v, want one with flow %+v", p.name, rows, want)
				}
				if got := rows[0].c; got != perRun {
					t.Errorf("%s: counters %+v, want %+v", p.name, got, perRun)
				}
			}
		})
	}
}

// TestCgroupRead checks the Go side of a read: rows keyed by the same flow
// and different owners stay apart, each owner's name comes from the comms
// map (or from /proc when the map has none), and its cgroup id is named by
// its path.
func TestCgroupRead(t *testing.T) {
	for _, l := range layouts {
		t.Run(l.String(), func(t *testing.T) { testCgroupRead(t, l) })
	}
}

func testCgroupRead(t *testing.T, layout flowtable.Layout) {
	objs := loadObjects[bpfprog.CgroupObjects](t, objectSpec(t, bpfprog.LoadCgroup), testLoad{maxEntries: 64, layout: layout})
	parent, child := testCgroupTree(t)
	cid, err := cgroups.ID(child)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := cgroups.Open(parent)
	if err != nil {
		t.Fatal(err)
	}
	names, err := cgroups.NewResolver(dir.Path, cgroups.DefaultMaxDirs)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cgroup{objs: *objs, dir: dir, log: slog.New(slog.DiscardHandler)}
	c.namer = owners.NewNamer(names, objs.Comms, c.log)
	c.table = newTestTable(t, flowtable.Maps{Slot: objs.FlowTables, Flows: objs.Flows, Untracked: objs.Untracked, HLL: objs.UntrackedHll, Gen: objs.UntrackedGen, Rows: objs.ArrayRows}, c.namer.Key)

	frame := bpftest.Frame(t, bpftest.Eth(layers.EthernetTypeIPv4), bpftest.IPv4(layers.IPProtocolUDP),
		bpftest.UDP(), bpftest.Payload(100))
	fk, err := expectedCgroupKey(frame)
	if err != nil {
		t.Fatal(err)
	}
	var bk bpfprog.OwnedFlowKey
	copy(bk.Flow.Saddr[:], fk.Src.AsSlice())
	copy(bk.Flow.Daddr[:], fk.Dst.AsSlice())
	bk.Flow.Sport, bk.Flow.Dport, bk.Flow.EthProto, bk.Flow.Proto = fk.SrcPort, fk.DstPort, fk.EtherType, fk.Proto

	self := uint32(os.Getpid())
	const other = 4_000_000 // above pid_max's default: no such process
	var name bpfprog.OwnerComm
	for i, ch := range []byte("nginx\nworker") { // a newline a process put in its name
		name.Comm[i] = int8(ch)
	}
	if err := objs.Comms.Put(uint32(other), &name); err != nil {
		t.Fatal(err)
	}
	put := func(pid uint32, cgid uint64, packets uint64) {
		k := bk
		k.Pid, k.CgroupId = pid, cgid
		// In the per-CPU layout, a second CPU's slot adds up too.
		putFlow(t, c.table, k, bpfprog.FlowVal{Packets: packets, Bytes: 128 * packets}, bpfprog.FlowVal{Packets: 1, Bytes: 128})
	}
	put(self, cid, 3)
	put(other, cid, 5)
	put(0, dir.ID, 7)

	snap, err := c.Drain()
	if err != nil {
		t.Fatal(err)
	}
	selfComm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	want := map[flow.OwnerInfo]flow.Counters{
		{PID: self, Comm: strings.TrimSpace(string(selfComm)), Cgroup: child}: {Packets: 4, Bytes: 512},
		{PID: other, Comm: "nginx\nworker", Cgroup: child}:                    {Packets: 6, Bytes: 768},
		{Cgroup: parent}: {Packets: 8, Bytes: 1024},
	}
	if len(snap.Flows) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(snap.Flows), len(want), snap.Flows)
	}
	got := map[flow.Key]flow.Counters{}
	for _, r := range snap.Flows {
		got[r.Key] = r.Counters
	}
	for o, cnt := range want {
		k := fk
		k.Owner = flow.NewOwner(o)
		if c, ok := got[k]; !ok || c != cnt {
			t.Errorf("row of owner %+v: %+v (present %v), want %+v\nall: %+v", o, c, ok, cnt, snap.Flows)
		}
	}
}

// testCgroupTree creates <v2 root>/pktcg-<random>/child, removed when the
// test ends.
func testCgroupTree(t *testing.T) (parent, child string) {
	t.Helper()
	parent, dirs := testnet.MakeCgroups(t, "pktcg", "child")
	return parent, dirs["child"]
}

// socketFile opens a socket that never binds or sends.
func socketFile(t *testing.T, domain, typ int) *os.File {
	t.Helper()
	fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), fmt.Sprintf("socket-%d-%d", domain, typ))
	t.Cleanup(func() { f.Close() })
	return f
}

// TestSeedOwners gives a process inside a cgroup sockets that it did not
// create (so no sock_create program could have seen them), and checks that
// seeding records that process as their owner: exactly the inet sockets,
// and never over an owner already recorded.
func TestSeedOwners(t *testing.T) {
	objs := loadObjects[bpfprog.CgroupObjects](t, objectSpec(t, bpfprog.LoadCgroup), testLoad{maxEntries: 64})
	parent, child := testCgroupTree(t)

	udp4 := socketFile(t, unix.AF_INET, unix.SOCK_DGRAM)
	tcp6 := socketFile(t, unix.AF_INET6, unix.SOCK_STREAM)
	owned := socketFile(t, unix.AF_INET, unix.SOCK_DGRAM)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	local := os.NewFile(uintptr(fds[0]), "unix")
	defer local.Close()
	defer unix.Close(fds[1])

	const earlier = 4242
	if err := objs.SockOwners.Update(uint32(owned.Fd()), &bpfprog.SockOwner{Pid: earlier}, ebpf.UpdateNoExist); err != nil {
		t.Fatalf("record an owner through a socket fd: %v", err)
	}

	cg, err := os.Open(child)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	cmd := exec.Command("sleep", "30")
	cmd.ExtraFiles = []*os.File{udp4, tcp6, owned, local}
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()

	pids, err := cgroups.Procs(parent, cgroups.DefaultMaxDirs)
	if err != nil {
		t.Fatal(err)
	}
	st, err := owners.Walk(pids, objs.SockOwners, objs.Comms)
	if err != nil {
		t.Fatal(err)
	}
	if st.Procs != 1 || st.Sockets != 2 || st.Denied != 0 {
		t.Errorf("seeding read %d processes, recorded %d sockets, was denied %d; want 1, 2, 0", st.Procs, st.Sockets, st.Denied)
	}
	pid := uint32(cmd.Process.Pid)
	for _, c := range []struct {
		name string
		f    *os.File
		want uint32
	}{
		{"udp4", udp4, pid},
		{"tcp6", tcp6, pid},
		{"already owned", owned, earlier},
	} {
		var o bpfprog.SockOwner
		if err := objs.SockOwners.Lookup(uint32(c.f.Fd()), &o); err != nil {
			t.Errorf("%s: no owner recorded: %v", c.name, err)
			continue
		}
		if o.Pid != c.want {
			t.Errorf("%s: owner %d, want %d", c.name, o.Pid, c.want)
		}
	}
	var o bpfprog.SockOwner
	if err := objs.SockOwners.Lookup(uint32(local.Fd()), &o); err == nil {
		t.Errorf("a unix socket got owner %+v; only inet sockets are counted", o)
	}
	var name bpfprog.OwnerComm
	if err := objs.Comms.Lookup(pid, &name); err != nil {
		t.Fatalf("no name recorded for %d: %v", pid, err)
	}
	if got := commString(name); got != "sleep" {
		t.Errorf("name of %d = %q, want sleep", pid, got)
	}
}

func commString(c bpfprog.OwnerComm) string {
	var b []byte
	for _, ch := range c.Comm {
		if ch == 0 {
			break
		}
		b = append(b, byte(ch))
	}
	return string(b)
}

// TestStartCgroupAttachesAndDetaches checks that StartCgroup puts exactly
// its three programs on the cgroup, as links, and that Stop takes every
// one of them off again.
func TestStartCgroupAttachesAndDetaches(t *testing.T) {
	bpftest.RequireRoot(t)
	parent, _ := testCgroupTree(t)
	dir, err := cgroups.Open(parent)
	if err != nil {
		t.Fatal(err)
	}
	c, err := StartCgroup(CgroupOptions{Dir: dir, MaxEntries: 64})
	if err != nil {
		t.Fatalf("%+v", err)
	}
	defer c.Close()
	got := testnet.CgroupPrograms(t, parent)
	want := map[ebpf.AttachType]ebpf.ProgramID{
		ebpf.AttachCGroupInetIngress:    bpftest.ProgramID(t, c.objs.PktstatCgIn),
		ebpf.AttachCGroupInetEgress:     bpftest.ProgramID(t, c.objs.PktstatCgOut),
		ebpf.AttachCGroupInetSockCreate: bpftest.ProgramID(t, c.objs.PktstatCgSock),
	}
	for at, id := range want {
		if len(got[at]) != 1 || got[at][0] != id {
			t.Errorf("%s: programs %v attached, want exactly ours (%d)", at, got[at], id)
		}
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	for at, ids := range testnet.CgroupPrograms(t, parent) {
		if len(ids) != 0 {
			t.Errorf("%s: programs %v still attached after Stop", at, ids)
		}
	}
	if _, err := c.Drain(); err != nil {
		t.Errorf("the table is not readable after Stop: %v", err)
	}
}

// BenchmarkCgroupPerPacket measures what pktstat_cg_in costs per packet in
// BPF_PROG_TEST_RUN, beside two baselines measured in the same run, taking
// turns: an empty cgroup_skb program (the harness by itself) and the TC
// program (pktstat_ingress) on the same 60-byte IPv4 UDP frame. The
// cgroup program does what TC does plus one socket-storage lookup for the
// owner. One iteration is the median of 5 runs of 1e6 repeats per
// program; run it with -benchtime 1x.
func BenchmarkCgroupPerPacket(b *testing.B) {
	bpftest.RequireRoot(b)
	objs := loadObjects[bpfprog.CgroupObjects](b, objectSpec(b, bpfprog.LoadCgroup), testLoad{})
	tc := loadObjects[bpfprog.TCObjects](b, objectSpec(b, bpfprog.LoadTC), testLoad{})
	empty := bpftest.EmptyProgram(b, ebpf.CGroupSKB, cgPass)

	frame, _ := benchFrame(b)
	var sumEmpty, sumTC, sumCg float64
	for range b.N {
		med, rets, err := bpftest.BenchmarkMedians(frame, benchRepeat, benchRuns, empty, tc.PktstatIngress, objs.PktstatCgIn)
		if err != nil {
			b.Fatal(err)
		}
		if rets[2] != cgPass {
			b.Fatalf("pktstat_cg_in returned %d, want %d", rets[2], cgPass)
		}
		sumEmpty += float64(med[0].Nanoseconds())
		sumTC += float64(med[1].Nanoseconds())
		sumCg += float64(med[2].Nanoseconds())
	}
	rows := readRaw(b, objs)
	if len(rows) != 1 || rows[0].c.Packets < uint64(b.N*benchRuns*benchRepeat) {
		b.Fatalf("the cgroup program counted %+v, want one row with >= %d packets", rows, b.N*benchRuns*benchRepeat)
	}
	n := float64(b.N)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(sumEmpty/n, "empty-ns/pkt")
	b.ReportMetric(sumTC/n, "tc-ns/pkt")
	b.ReportMetric(sumCg/n, "cgroup-ns/pkt")
}

// expectedCgroupKey is bpftest.ExpectedKey for the cgroup programs, whose
// keys name no interface.
func expectedCgroupKey(frame []byte) (flow.Key, error) {
	k, err := bpftest.ExpectedKey(frame)
	k.Ifindex = 0
	return k, err
}
