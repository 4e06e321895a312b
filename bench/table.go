package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// WriteTable writes r as text tables: one row per verify mode, one per
// revocation path, then the notes. The numbers are r's, spelled as in the
// JSON (milliseconds with three decimals, requests per second with one).
func (r *Result) WriteTable(w io.Writer) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "Gatehouse bench: %s at %s (%s)\n", r.Target, r.Timestamp.UTC().Format(time.RFC3339), r.GoVersion)
	fmt.Fprintf(ew, "verify: %s per mode, %d concurrent clients; revocation: %d per path, polled for at most %s; run took %s\n\n",
		msDuration(r.Params.DurationMS), r.Params.Concurrency, r.Params.Repeat, msDuration(r.Params.RevokeWaitMS), msDuration(r.ElapsedMS))

	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODE\tREQUESTS\tERRORS\tREQ/S\tP50 MS\tP95 MS\tP99 MS\tCREDENTIAL B\tREQUEST B\tRESPONSE B\tCREDENTIAL")
	for _, m := range r.Verify {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Mode, fmtInt(m.Requests), fmtInt(m.Errors),
			fmtRPS(m.RPS), fmtMS(m.P50MS), fmtMS(m.P95MS), fmtMS(m.P99MS),
			fmtInt(m.CredentialBytes), fmtInt(m.RequestBytes), fmtInt(m.ResponseBytes), m.Label)
	}
	if len(r.Verify) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	tw.Flush()
	fmt.Fprintln(ew)

	tw = tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REVOCATION PATH\tMETHOD\tSAMPLES\tP50 MS\tP99 MS\tMAX MS\tACCEPTED AFTER\tTIMED OUT\tWHAT")
	for _, v := range r.Revocation {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Path, v.Method, fmtInt(v.Samples),
			fmtMS(v.P50MS), fmtMS(v.P99MS), fmtMS(v.MaxMS), fmtInt(v.AcceptedAfter), fmtInt(v.TimedOut), v.Label)
	}
	if len(r.Revocation) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	tw.Flush()

	if len(r.Notes) > 0 {
		fmt.Fprintln(ew, "\nnotes:")
		for _, n := range r.Notes {
			fmt.Fprintf(ew, "  - %s\n", n)
		}
	}
	if ew.err != nil {
		return fmt.Errorf("bench: write table: %w", ew.err)
	}
	return nil
}

// msDuration spells a number of milliseconds as a duration ("5s").
func msDuration(v float64) string {
	return (time.Duration(v * float64(time.Millisecond))).Round(time.Microsecond).String()
}

// errWriter keeps the first write error and drops the writes after it.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
