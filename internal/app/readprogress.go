package app

import (
	"fmt"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progressMinSize is the smallest file --read shows a progress bar for:
// smaller ones are read in seconds.
const progressMinSize = 100 << 20

// readProgress is --read's progress bar on stderr: bytes of the file
// done, packets, rate and time left. It exists only when stderr is a
// terminal and the file's size is known and at least progressMinSize;
// its methods do nothing on a nil one.
type readProgress struct{ bar *progressbar.ProgressBar }

func newReadProgress(size int64) *readProgress {
	if size < progressMinSize || !term.IsTerminal(int(os.Stderr.Fd())) {
		return nil
	}
	return &readProgress{bar: progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionSetDescription("reading"),
		progressbar.OptionClearOnFinish(),
	)}
}

// update shows offset bytes and packets done.
func (p *readProgress) update(offset int64, packets int) {
	if p == nil {
		return
	}
	p.bar.Describe(fmt.Sprintf("%d packets", packets))
	_ = p.bar.Set64(offset)
}

// done clears the bar.
func (p *readProgress) done() {
	if p == nil {
		return
	}
	_ = p.bar.Finish()
}
