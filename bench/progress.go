package bench

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// barWidth is the number of cells of the progress bar.
const barWidth = 20

// progress draws "[#####---------------]  25% verifying token mode". On a
// terminal the line is redrawn in place (carriage return) as the run
// advances; elsewhere (a log, a pipe) one line is printed per step. A
// progress with a nil writer draws nothing. It is safe for concurrent use.
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	total   int     // steps
	done    int     // steps finished
	frac    float64 // of the current step
	label   string
	lastLen int // of the line on screen (terminal)
	drawn   bool
}

func newProgress(w io.Writer, tty bool, steps int) *progress {
	return &progress{w: w, tty: tty, total: max(steps, 1)}
}

// step shows a label without starting a step (set-up, the end).
func (p *progress) step(label string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.label, p.frac = label, 0
	p.draw(true)
}

// begin starts the next step.
func (p *progress) begin(label string) { p.step(label) }

// set reports how much of the current step is done, from 0 to 1.
func (p *progress) set(f float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frac = min(max(f, 0), 1)
	p.draw(false)
}

// end finishes the current step.
func (p *progress) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = min(p.done+1, p.total)
	p.frac = 0
}

// tick moves the bar through the current step as the time from start to
// start+d passes, until stop is called. It only animates a terminal.
func (p *progress) tick(start time.Time, d time.Duration) (stop func()) {
	if p.w == nil || !p.tty {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				p.set(float64(time.Since(start)) / float64(d))
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// close ends the terminal's progress line.
func (p *progress) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.w != nil && p.tty && p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// line renders the bar.
func (p *progress) line() string {
	f := (float64(p.done) + p.frac) / float64(p.total)
	f = min(max(f, 0), 1)
	cells := int(f * barWidth)
	return fmt.Sprintf("[%s%s] %3d%% %s", strings.Repeat("#", cells), strings.Repeat("-", barWidth-cells), int(f*100), p.label)
}

// draw writes the line: on a terminal always, elsewhere only when a step
// begins (newStep).
func (p *progress) draw(newStep bool) {
	if p.w == nil {
		return
	}
	l := p.line()
	if !p.tty {
		if newStep {
			fmt.Fprintln(p.w, l)
		}
		return
	}
	pad := max(p.lastLen-len(l), 0)
	fmt.Fprintf(p.w, "\r%s%s", l, strings.Repeat(" ", pad))
	p.lastLen = len(l)
	p.drawn = true
}
