// Package manpage writes the pktstat-bpf(8) man page from the flags of
// cli.FlagSet, the same definitions that --help prints, so that the two
// cannot drift apart: a flag added to the command line is in the next
// man page without an edit here.
package manpage

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// Page is what the man page says besides the flags.
type Page struct {
	Version string // the footer's version
	Date    string // the footer's date, YYYY-MM-DD
}

// escape makes s safe as roff text: backslashes, hyphens (so that
// flags copy as ASCII), and a leading control character.
func escape(s string) string {
	s = strings.NewReplacer(`\`, `\e`, "-", `\-`).Replace(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// Write writes the man page in roff (man macros) for the flags of fs.
func Write(w io.Writer, p Page, fs *pflag.FlagSet) error {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH PKTSTAT\\-BPF 8 %q %q \"System Administration\"\n", p.Date, "pktstat-bpf "+p.Version)
	// No hyphenation, and a ragged right margin: a flag broken over two
	// lines, or with a typographic hyphen, fails when copied.
	b.WriteString(`.nh
.ad l
.SH NAME
pktstat\-bpf \- per\-flow traffic statistics counted by eBPF programs in the kernel
.SH SYNOPSIS
.B pktstat\-bpf
.RI [ flags ]
.RI [ "filter expression" ]
.SH DESCRIPTION
.B pktstat\-bpf
counts packets and bytes per flow with eBPF programs attached to an
interface (TC or XDP), to a cgroup v2 directory, or to the kernel's
sockets (per process), and prints a report at the end, a report every
interval, a live table, or Prometheus metrics.
.PP
The words after the flags are a filter expression in the syntax of
.BR pcap\-filter (7),
tested in the kernel on every packet; traffic that does not match is
counted apart, in no flow.
.SH OPTIONS
`)
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden || f.Deprecated != "" {
			return
		}
		varname, usage := pflag.UnquoteUsage(f)
		b.WriteString(".TP\n")
		var head []string
		if f.Shorthand != "" {
			head = append(head, `\fB\-`+escape(f.Shorthand)+`\fR`)
		}
		long := `\fB\-\-` + escape(f.Name) + `\fR`
		if varname != "" {
			long += ` \fI` + escape(varname) + `\fR`
		}
		head = append(head, long)
		b.WriteString(strings.Join(head, ", ") + "\n")
		b.WriteString(escape(usage))
		if d := f.DefValue; d != "" && d != "false" && d != "0" && d != "[]" && !strings.Contains(usage, "default") {
			b.WriteString(" (default " + escape(d) + ")")
		}
		b.WriteString("\n")
	})
	b.WriteString(`.SH EXIT STATUS
0 on success (a signal is a normal end), 1 on an error, 2 on a usage error.
.SH EXAMPLES
Count the traffic of eth0 for 30 seconds, then print a report:
.PP
.RS
.nf
pktstat\-bpf \-i eth0 \-t 30s
.fi
.RE
.PP
A live table of the DNS traffic of every interface:
.PP
.RS
.nf
pktstat\-bpf \-g \-i any udp port 53
.fi
.RE
.PP
Serve Prometheus metrics on loopback:
.PP
.RS
.nf
pktstat\-bpf \-\-listen 127.0.0.1:9864
.fi
.RE
.SH FILES
.TP
.I /usr/lib/systemd/system/pktstat\-bpf.service
the systemd unit of the packages, disabled by default.
.SH SEE ALSO
.BR tcpdump (8),
.BR pcap\-filter (7),
.BR bpftool (8)
`)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write man page: %w", err)
	}
	return nil
}
