package cli

import (
	"io"
	"testing"
	"time"
)

func TestParseIntervalAndTop(t *testing.T) {
	cfg, err := Parse([]string{"--interval", "250ms", "--top", "5"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Interval != 250*time.Millisecond || cfg.Top != 5 {
		t.Errorf("interval %v, top %d; want 250ms, 5", cfg.Interval, cfg.Top)
	}
	cfg, err = Parse(nil, io.Discard)
	if err != nil || cfg.Interval != 0 || cfg.Top != 0 {
		t.Errorf("defaults: interval %v, top %d, %v; want 0 (one report at the end), 0 (every row)", cfg.Interval, cfg.Top, err)
	}
	cfg, err = Parse([]string{"--interval", "100ms"}, io.Discard)
	if err != nil || cfg.Interval != MinInterval {
		t.Errorf("--interval at the minimum: %v, %v", cfg.Interval, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--interval", "99ms"}, "--interval 99ms: must be at least 100ms"},
		{[]string{"--interval", "0"}, "--interval 0s: must be at least 100ms"},
		{[]string{"--interval", "-1s"}, "--interval -1s"},
		{[]string{"--top", "0"}, "--top 0: must be at least 1"},
		{[]string{"--top", "-3"}, "--top -3"},
	} {
		wantUsageError(t, tc.args, tc.want)
	}
}
