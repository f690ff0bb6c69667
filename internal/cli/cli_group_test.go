package cli

import (
	"io"
	"testing"

	"github.com/pktstat-bpf/pktstat-bpf/internal/group"
)

func TestParseGroupBy(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want group.By
	}{
		{nil, 0},
		{[]string{"--group-by", "proto"}, group.By(group.Proto)},
		{[]string{"--group-by", "dport,proto", "--top", "3"}, group.By(group.Proto | group.DPort)},
		{[]string{"--group-by", "src,app,vlan,iface", "-x"}, group.By(group.Src | group.App | group.VLAN | group.Iface)},
		{[]string{"--group-by", "cgroup", "-c", "/sys/fs/cgroup/x", "--interval", "5s", "-j"}, group.By(group.Cgroup)},
		{[]string{"--group-by", "pid,comm,dst", "-k"}, group.By(group.PID | group.Comm | group.Dst)},
		{[]string{"--group-by", "dir", "-g"}, group.By(group.Dir)},
		{[]string{"--group-by", "proto", "--listen", ":9864", "-j"}, group.By(group.Proto)},
	} {
		cfg, err := Parse(tc.args, io.Discard)
		if err != nil || cfg.GroupBy != tc.want {
			t.Errorf("Parse(%q): group by %v, %v; want %v", tc.args, cfg.GroupBy, err, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--group-by", "port"}, `invalid --group-by "port": unknown field "port"`},
		{[]string{"--group-by", "proto,"}, `invalid --group-by "proto,": empty field`},
		{[]string{"--group-by", ""}, `invalid --group-by "": empty field`},
		{[]string{"--group-by", "pid"}, "--group-by pid does not apply to tc mode: it has values only in cgroup mode (-c) and process mode (-k)"},
		{[]string{"--group-by", "src,comm", "-x"}, "--group-by comm does not apply to xdp mode"},
		{[]string{"--group-by", "app", "-c", "/sys/fs/cgroup/x"}, "--group-by app does not apply to cgroup mode: it has values only in TC mode and XDP mode (-x)"},
		{[]string{"--group-by", "vlan", "-k"}, "--group-by vlan does not apply to process mode"},
		{[]string{"--group-by", "iface", "-k"}, "--group-by iface does not apply to process mode"},
		{[]string{"--group-by", "proto", "--listen", ":9864"}, "--group-by groups the rows of reports and of the live table"},
	} {
		wantUsageError(t, tc.args, tc.want)
	}
}
