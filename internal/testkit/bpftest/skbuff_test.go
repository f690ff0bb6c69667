package bpftest

import (
	"encoding/binary"
	"reflect"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// TestSkBuffLayout checks SkBuff against struct __sk_buff as the running
// kernel describes it in its BTF: same members, in the same order, at the
// same offsets. The kernel may have appended members; SkBuff must then be a
// prefix of it.
func TestSkBuffLayout(t *testing.T) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Skipf("needs kernel BTF (/sys/kernel/btf/vmlinux): %v", err)
	}
	var st *btf.Struct
	if err := spec.TypeByName("__sk_buff", &st); err != nil {
		t.Fatalf("find struct __sk_buff in kernel BTF: %v", err)
	}

	type member struct {
		name string
		off  uint32
	}
	// Flatten the anonymous unions that __bpf_md_ptr wraps pointers in.
	var cMembers []member
	var flatten func(ms []btf.Member, base uint32)
	flatten = func(ms []btf.Member, base uint32) {
		for _, m := range ms {
			off := base + uint32(m.Offset.Bytes())
			if m.Name == "" {
				if u, ok := m.Type.(*btf.Union); ok {
					flatten(u.Members, off)
				}
				continue // anonymous bit-field padding
			}
			cMembers = append(cMembers, member{m.Name, off})
		}
	}
	flatten(st.Members, 0)

	var goMembers []member
	typ := reflect.TypeFor[SkBuff]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Name == "Pad" {
			continue
		}
		goMembers = append(goMembers, member{f.Name, uint32(f.Offset)})
	}

	if len(goMembers) > len(cMembers) {
		t.Fatalf("SkBuff has %d fields, the kernel's __sk_buff only %d", len(goMembers), len(cMembers))
	}
	for i, g := range goMembers {
		c := cMembers[i]
		if strings.ReplaceAll(c.name, "_", "") != strings.ToLower(g.name) || c.off != g.off {
			t.Errorf("field %d: SkBuff.%s at offset %d, __sk_buff.%s at offset %d", i, g.name, g.off, c.name, c.off)
		}
	}
	// encoding/binary must see no implicit padding, or it would shift fields.
	if got, want := binary.Size(SkBuff{}), int(reflect.TypeFor[SkBuff]().Size()); got != want {
		t.Errorf("binary.Size(SkBuff) = %d, in memory %d: implicit padding", got, want)
	}
	if last := cMembers[len(goMembers)-1]; len(goMembers) == len(cMembers) && int(st.Size) != binary.Size(SkBuff{}) {
		t.Errorf("SkBuff is %d bytes, __sk_buff %d (last member %s)", binary.Size(SkBuff{}), st.Size, last.name)
	}
}
