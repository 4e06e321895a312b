package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// Geometry of the chart, in SVG user units.
const (
	svgWidth   = 980
	svgMargin  = 20
	svgLabelX  = 230 // right edge of the bar labels
	svgBarX    = 240 // left edge of the bars
	svgBarMax  = 480 // length of the longest bar
	svgBarH    = 16
	svgRowH    = 22
	svgGroupH  = 8  // extra space between groups
	svgTitleH  = 42 // a chart's title and note
	svgChartGp = 24 // space between charts
	// svgLogFloor is the left end of the revocation chart's log scale, in
	// milliseconds (one microsecond).
	svgLogFloor = 0.001
)

// Colours of the series.
const (
	colP50      = "#4e79a7"
	colP99      = "#e15759"
	colRPS      = "#59a14f"
	colCred     = "#b07aa1"
	colRequest  = "#76b7b2"
	colResponse = "#edc948"
	colComputed = "#9c755f"
)

// svgBar is one bar of a chart.
type svgBar struct {
	label string
	value float64
	text  string // the value as shown
	color string
}

// svgChart is a horizontal bar chart: groups of bars, one group per mode
// or path.
type svgChart struct {
	title, note string
	groups      [][]svgBar
	log         bool // logarithmic scale from svgLogFloor
}

// charts are the four charts of a result.
func (r *Result) charts() []svgChart {
	lat := svgChart{title: "Verify latency per mode (ms, lower is better)",
		note: "GET /v1/verify, from sending the request to reading the whole answer"}
	rps := svgChart{title: "Verify throughput per mode (requests/s, higher is better)",
		note: fmt.Sprintf("%d concurrent keep-alive clients for %s per mode", r.Params.Concurrency, msDuration(r.Params.DurationMS))}
	size := svgChart{title: "Bytes per verify request per mode",
		note: "credential header line, whole request and whole answer as written and read on the connection"}
	for _, m := range r.Verify {
		lat.groups = append(lat.groups, []svgBar{
			{m.Mode + " p50", m.P50MS, fmtMS(m.P50MS) + " ms", colP50},
			{m.Mode + " p99", m.P99MS, fmtMS(m.P99MS) + " ms", colP99},
		})
		rps.groups = append(rps.groups, []svgBar{{m.Mode, m.RPS, fmtRPS(m.RPS) + " req/s", colRPS}})
		size.groups = append(size.groups, []svgBar{
			{m.Mode + " credential", float64(m.CredentialBytes), fmtInt(m.CredentialBytes) + " B", colCred},
			{m.Mode + " request", float64(m.RequestBytes), fmtInt(m.RequestBytes) + " B", colRequest},
			{m.Mode + " response", float64(m.ResponseBytes), fmtInt(m.ResponseBytes) + " B", colResponse},
		})
	}
	rev := svgChart{title: "Revocation delay per path (ms, log scale, lower is better)", log: true,
		note: "polled: from the revocation's answer to the first refusal by GET /v1/verify; computed: the token's exp - now"}
	for _, v := range r.Revocation {
		p50, p99 := colP50, colP99
		suffix := ""
		if v.Method == MethodComputed {
			p50, p99, suffix = colComputed, colComputed, " (computed)"
		}
		rev.groups = append(rev.groups, []svgBar{
			{v.Path + " p50", v.P50MS, fmtMS(v.P50MS) + " ms" + humanMS(v.P50MS) + suffix, p50},
			{v.Path + " p99", v.P99MS, fmtMS(v.P99MS) + " ms" + humanMS(v.P99MS) + suffix, p99},
		})
	}
	return []svgChart{lat, rps, size, rev}
}

// humanMS adds a readable duration to a long time in milliseconds.
func humanMS(v float64) string {
	if v < 1000 {
		return ""
	}
	return " ≈ " + (time.Duration(v * float64(time.Millisecond))).Round(100*time.Millisecond).String()
}

// height is the chart's height.
func (c svgChart) height() int {
	h := svgTitleH
	if len(c.groups) == 0 {
		return h + svgRowH
	}
	for _, g := range c.groups {
		h += len(g)*svgRowH + svgGroupH
	}
	return h
}

// svgWriter builds the document, escaping every text.
type svgWriter struct {
	bytes.Buffer
}

func (w *svgWriter) text(x, y int, anchor, weight, size string, s string) {
	fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="%s" font-weight="%s" font-size="%s">`, x, y, anchor, weight, size)
	xml.EscapeText(w, []byte(s))
	w.WriteString("</text>\n")
}

// WriteSVG writes r as a self-contained SVG document (no external fonts,
// images or scripts): bar charts of the verify latency, throughput and
// bytes per request of each mode, and of the revocation delay of each path.
// Every value label is r's number, spelled as in the table.
func (r *Result) WriteSVG(out io.Writer) error {
	charts := r.charts()
	height := svgMargin + 50
	for _, c := range charts {
		height += c.height() + svgChartGp
	}
	height += svgMargin

	w := &svgWriter{}
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">
<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>
`, svgWidth, height, svgWidth, height, svgWidth, height)
	w.WriteString("<title>")
	xml.EscapeText(w, []byte("Gatehouse bench: "+r.Target))
	w.WriteString("</title>\n")
	w.text(svgMargin, svgMargin+16, "start", "bold", "18", "Gatehouse bench: "+r.Target)
	w.text(svgMargin, svgMargin+38, "start", "normal", "12", fmt.Sprintf("%s · %s · %d revocations per path · run took %s",
		r.Timestamp.UTC().Format(time.RFC3339), r.GoVersion, r.Params.Repeat, msDuration(r.ElapsedMS)))

	y := svgMargin + 50
	for _, c := range charts {
		y = w.chart(c, y) + svgChartGp
	}
	w.WriteString("</svg>\n")
	if _, err := out.Write(w.Bytes()); err != nil {
		return fmt.Errorf("bench: write chart: %w", err)
	}
	return nil
}

// svg returns WriteSVG's document.
func (r *Result) svg() ([]byte, error) {
	var b bytes.Buffer
	if err := r.WriteSVG(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// chart draws c from y down and returns the y below it.
func (w *svgWriter) chart(c svgChart, y int) int {
	w.text(svgMargin, y+16, "start", "bold", "14", c.title)
	w.text(svgMargin, y+32, "start", "normal", "11", c.note)
	y += svgTitleH
	if len(c.groups) == 0 {
		w.text(svgBarX, y+svgBarH-3, "start", "normal", "12", "no data")
		return y + svgRowH
	}
	top := 0.0
	for _, g := range c.groups {
		for _, b := range g {
			top = max(top, b.value)
		}
	}
	for _, g := range c.groups {
		for _, b := range g {
			n := c.length(b.value, top)
			w.text(svgLabelX, y+svgBarH-3, "end", "normal", "12", b.label)
			fmt.Fprintf(w, `<rect x="%d" y="%d" width="%s" height="%d" fill="%s"/>`+"\n",
				svgBarX, y, strconv.FormatFloat(n, 'f', 1, 64), svgBarH, b.color)
			w.text(svgBarX+int(math.Ceil(n))+6, y+svgBarH-3, "start", "normal", "12", b.text)
			y += svgRowH
		}
		y += svgGroupH
	}
	return y
}

// length is the length of a bar of value v in a chart whose largest value
// is top; a bar above zero is at least one unit long.
func (c svgChart) length(v, top float64) float64 {
	if v <= 0 || top <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	var f float64
	if c.log {
		if top <= svgLogFloor {
			f = 1
		} else {
			f = math.Log10(max(v, svgLogFloor)/svgLogFloor) / math.Log10(top/svgLogFloor)
		}
	} else {
		f = v / top
	}
	return max(1, min(f, 1)*svgBarMax)
}
