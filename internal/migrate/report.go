package migrate

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
)

// WriteTable writes the verification table: per kind, the records in the
// source, the dead ones skipped, the ones copied (or to copy, when the copy
// did not run), the ones already present, the count in the destination,
// and the status. Conflicts follow the table.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	copied := "COPIED"
	if !r.Copied {
		copied = "TO COPY"
	}
	// The numbers are aligned right; the kinds, padded, and the status,
	// after the last cell, are left as they are.
	width := len("KIND")
	for _, c := range r.Counts {
		width = max(width, len(c.Kind))
	}
	fmt.Fprintf(tw, "%-*s\tSOURCE\tSKIPPED\t%s\tPRESENT\tDEST\t  STATUS\n", width, "KIND", copied)
	for _, c := range r.Counts {
		fmt.Fprintf(tw, "%-*s\t%d\t%d\t%d\t%d\t%d\t  %s\n", width, c.Kind, c.Source, c.Skipped, c.Copied, c.Present, c.Dest, r.status(c))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	total := 0
	for _, c := range r.Counts {
		total += c.Conflicts
	}
	if total > 0 {
		fmt.Fprintf(w, "\n%d conflicts: the destination holds these records with different data", total)
		if total > len(r.Conflicts) {
			fmt.Fprintf(w, " (the first %d)", len(r.Conflicts))
		}
		fmt.Fprintln(w, ":")
		for _, c := range r.Conflicts {
			fmt.Fprintf(w, "  %s\n", c)
		}
	}
	_, err := fmt.Fprintln(w)
	return err
}

// status is the STATUS column of c.
func (r *Report) status(c Count) string {
	switch {
	case c.Conflicts > 0:
		return "CONFLICT (" + strconv.Itoa(c.Conflicts) + ")"
	case !r.Copied:
		return "dry run"
	case c.OK():
		return "OK"
	default:
		return fmt.Sprintf("MISMATCH (%d of %d verified)", c.Verified, c.Source-c.Skipped)
	}
}

// barWidth is the number of cells of a progress bar.
const barWidth = 30

// ProgressBar returns an Options.Progress that draws a bar on w for each
// kind of each pass, e.g.
//
//	copy    users              1234/1234 [##############################] 100%
//
// On a terminal the bar is redrawn in place (\r) as records go; elsewhere (a
// log file, a pipe) one line is written when the pass over a kind ends.
func ProgressBar(w io.Writer, terminal bool) func(Progress) {
	b := &bar{w: w, terminal: terminal, drawn: -1}
	return b.update
}

// bar is the state of ProgressBar.
type bar struct {
	mu       sync.Mutex
	w        io.Writer
	terminal bool
	drawn    int // the permille last drawn, -1 for none
}

func (b *bar) update(p Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	permille := 1000
	if p.Total > 0 {
		permille = min(1000, p.Done*1000/p.Total)
	}
	switch {
	case !b.terminal:
		if p.End {
			fmt.Fprintln(b.w, line(p, permille))
		}
	case p.End:
		if permille == b.drawn {
			fmt.Fprintln(b.w) // the bar is up to date
		} else {
			fmt.Fprintf(b.w, "\r%s\n", line(p, permille))
		}
		b.drawn = -1
	case p.Done == 0 || permille != b.drawn:
		fmt.Fprintf(b.w, "\r%s", line(p, permille))
		b.drawn = permille
	}
}

// line is one progress bar.
func line(p Progress, permille int) string {
	full := permille * barWidth / 1000
	digits := len(strconv.Itoa(p.Total))
	return fmt.Sprintf("%-7s %-17s %*d/%d [%s%s] %3d%%", p.Phase, p.Kind, digits, p.Done, p.Total,
		strings.Repeat("#", full), strings.Repeat(".", barWidth-full), permille/10)
}
