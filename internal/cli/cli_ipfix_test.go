package cli

import (
	"io"
	"testing"
	"time"
)

func TestParseIPFIX(t *testing.T) {
	cfg, err := Parse([]string{"--ipfix", "198.18.0.1:4739", "--listen", ":9864", "--interval", "1s", "--group-by", "dst"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := (IPFIX{Target: "198.18.0.1:4739", Interval: time.Minute, TemplateRefresh: 10 * time.Minute, PEN: 32473}); cfg.IPFIX != want {
		t.Errorf("defaults: %+v, want %+v", cfg.IPFIX, want)
	}
	cfg, err = Parse([]string{"--ipfix", "tcp://[2001:2::1]:4739", "--ipfix-interval", "1s", "--ipfix-template-refresh", "30s", "--ipfix-pen", "9", "-c", "/sys/fs/cgroup"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := (IPFIX{Target: "tcp://[2001:2::1]:4739", Interval: time.Second, TemplateRefresh: 30 * time.Second, PEN: 9}); cfg.IPFIX != want {
		t.Errorf("%+v, want %+v", cfg.IPFIX, want)
	}
	if cfg, err = Parse(nil, io.Discard); err != nil || cfg.IPFIX != (IPFIX{}) {
		t.Errorf("without --ipfix: %+v, %v", cfg.IPFIX, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--ipfix-interval", "5s"}, "--ipfix-interval applies only to flow export"},
		{[]string{"--ipfix-pen", "5"}, "--ipfix-pen applies only to flow export"},
		{[]string{"--ipfix", "collector"}, `invalid --ipfix: "collector" is not HOST:PORT or tcp://HOST:PORT`},
		{[]string{"--ipfix", "tcp://:4739"}, `invalid --ipfix: "tcp://:4739"`},
		{[]string{"--ipfix", "198.18.0.1:"}, `invalid --ipfix: "198.18.0.1:"`},
		{[]string{"--ipfix", "198.18.0.1:4739", "--ipfix-interval", "999ms"}, "--ipfix-interval 999ms: must be at least 1s"},
		{[]string{"--ipfix", "198.18.0.1:4739", "--ipfix-template-refresh", "0"}, "--ipfix-template-refresh 0s"},
		{[]string{"--ipfix", "198.18.0.1:4739", "-g"}, "--ipfix and -g (--tui) cannot be combined"},
	} {
		wantUsageError(t, tc.args, tc.want)
	}
}
