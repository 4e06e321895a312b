package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sampleResult is a result with distinct, known numbers in every field the
// renderings show.
func sampleResult() *Result {
	return &Result{
		Timestamp: time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC),
		Target:    "http://127.0.0.1:8080",
		GoVersion: "go1.26.8",
		Params: Params{DurationMS: 5000, Concurrency: 8, Repeat: 20, RevokeWaitMS: 5000,
			Username: "bench-0a1b2c3d4e5f", CreatedUser: true},
		ElapsedMS: 41234.567,
		Verify: []ModeResult{
			{Mode: "session", Label: "session cookie", Requests: 60001, Errors: 0, ElapsedMS: 5000.123,
				RPS: 12000.1, P50MS: 0.412, P95MS: 0.733, P99MS: 1.901,
				CredentialBytes: 64, RequestBytes: 145, ResponseBytes: 374},
			{Mode: "token", Label: "Bearer access token", Requests: 55002, Errors: 3, ElapsedMS: 5000.456,
				RPS: 11000.2, P50MS: 0.455, P95MS: 0.801, P99MS: 2.077,
				CredentialBytes: 476, RequestBytes: 557, ResponseBytes: 372},
			{Mode: "cookie-token", Label: "hybrid access cookie", Requests: 50003, Errors: 0, ElapsedMS: 5000.789,
				RPS: 10000.3, P50MS: 0.466, P95MS: 0.812, P99MS: 2.113,
				CredentialBytes: 472, RequestBytes: 553, ResponseBytes: 379},
		},
		Revocation: []RevocationResult{
			{Path: "session-logout", Label: "session logout", Method: MethodPolled, Samples: 20,
				P50MS: 0.211, P99MS: 0.593, MaxMS: 0.594},
			{Path: "token-revoke", Label: "access token revoke", Method: MethodPolled, Samples: 20,
				P50MS: 0.279, P99MS: 0.345, MaxMS: 0.346, AcceptedAfter: 2, TimedOut: 1},
			{Path: "jwks-only", Label: "JWKS-only verifier", Method: MethodComputed, Samples: 20,
				P50MS: 599184.188, P99MS: 599192.952, MaxMS: 599192.953},
		},
		Notes: []string{"forced logout path: skipped, no admin key"},
	}
}

// TestRenderTable checks that every number of the result appears in its
// row of the table, spelled as the JSON spells it.
func TestRenderTable(t *testing.T) {
	r := sampleResult()
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	rows := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows[f[0]] = f
		}
	}
	for _, m := range r.Verify {
		want := []string{m.Mode, fmtInt(m.Requests), fmtInt(m.Errors), fmtRPS(m.RPS), fmtMS(m.P50MS), fmtMS(m.P95MS),
			fmtMS(m.P99MS), fmtInt(m.CredentialBytes), fmtInt(m.RequestBytes), fmtInt(m.ResponseBytes)}
		got := rows[m.Mode]
		if len(got) < len(want) || !reflect.DeepEqual(got[:len(want)], want) {
			t.Errorf("row of mode %s = %q, want it to start with %q\n%s", m.Mode, got, want, out)
		}
	}
	for _, v := range r.Revocation {
		want := []string{v.Path, v.Method, fmtInt(v.Samples), fmtMS(v.P50MS), fmtMS(v.P99MS), fmtMS(v.MaxMS),
			fmtInt(v.AcceptedAfter), fmtInt(v.TimedOut)}
		got := rows[v.Path]
		if len(got) < len(want) || !reflect.DeepEqual(got[:len(want)], want) {
			t.Errorf("row of path %s = %q, want it to start with %q\n%s", v.Path, got, want, out)
		}
	}
	for _, s := range []string{"12000.1", "0.412", "599184.188", "http://127.0.0.1:8080", "2026-05-04T03:02:01Z",
		"5s per mode", "8 concurrent", "20 per path", r.Notes[0]} {
		if !strings.Contains(out, s) {
			t.Errorf("table lacks %q:\n%s", s, out)
		}
	}
}

// TestRenderTableEmpty renders a result without measurements.
func TestRenderTableEmpty(t *testing.T) {
	var b bytes.Buffer
	if err := (&Result{}).WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Count(b.String(), "(none)") != 2 {
		t.Errorf("an empty result should say (none) under both headers:\n%s", b.String())
	}
}

// TestRenderTableWriteError reports the writer's error.
func TestRenderTableWriteError(t *testing.T) {
	boom := errors.New("disk full")
	if err := sampleResult().WriteTable(failWriter{boom}); !errors.Is(err, boom) {
		t.Fatalf("WriteTable error = %v, want %v", err, boom)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

// svgTexts parses doc as XML (failing the test if it is not well-formed)
// and returns the root element's name and every text node.
func svgTexts(t *testing.T, doc []byte) (string, []string) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var root string
	var texts []string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v\n%s", err, doc)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = el.Name.Space + " " + el.Name.Local
			}
			if el.Name.Local == "script" || el.Name.Local == "image" || el.Name.Local == "foreignObject" {
				t.Errorf("the SVG has a <%s> element: it must be self-contained", el.Name.Local)
			}
			for _, a := range el.Attr {
				if a.Name.Local == "href" || strings.HasPrefix(a.Name.Local, "on") {
					t.Errorf("the SVG has an attribute %s=%q", a.Name.Local, a.Value)
				}
			}
		case xml.CharData:
			if s := strings.TrimSpace(string(el)); s != "" {
				texts = append(texts, s)
			}
		}
	}
	return root, texts
}

// TestRenderSVG checks that the chart is well-formed SVG whose value labels
// are the result's numbers.
func TestRenderSVG(t *testing.T) {
	r := sampleResult()
	var b bytes.Buffer
	if err := r.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	root, texts := svgTexts(t, b.Bytes())
	if root != "http://www.w3.org/2000/svg svg" {
		t.Fatalf("root element %q, want svg in the SVG namespace", root)
	}
	has := func(s string) bool {
		for _, x := range texts {
			if x == s || strings.HasPrefix(x, s+" ") {
				return true
			}
		}
		return false
	}
	var want []string
	for _, m := range r.Verify {
		want = append(want, fmtMS(m.P50MS)+" ms", fmtMS(m.P99MS)+" ms", fmtRPS(m.RPS)+" req/s",
			fmtInt(m.CredentialBytes)+" B", fmtInt(m.RequestBytes)+" B", fmtInt(m.ResponseBytes)+" B",
			m.Mode+" p50", m.Mode+" p99")
	}
	for _, v := range r.Revocation {
		want = append(want, fmtMS(v.P50MS)+" ms", fmtMS(v.P99MS)+" ms", v.Path+" p50", v.Path+" p99")
	}
	want = append(want, "Gatehouse bench: http://127.0.0.1:8080", "599184.188 ms ≈ 9m59.2s (computed)")
	for _, s := range want {
		if !has(s) {
			t.Errorf("the SVG has no text %q; texts: %q", s, texts)
		}
	}
}

// TestRenderSVGEscapes renders hostile text: the document stays
// well-formed and shows the text as text.
func TestRenderSVGEscapes(t *testing.T) {
	r := sampleResult()
	r.Target = `http://x/"><script>alert(1)</script>&amp;`
	r.Verify[0].Mode = "<b>&'\""
	r.Revocation[0].Path = "]]><!--"
	var b bytes.Buffer
	if err := r.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	_, texts := svgTexts(t, b.Bytes())
	joined := strings.Join(texts, "\n")
	for _, s := range []string{r.Target, "<b>&'\" p50", "]]><!-- p99"} {
		if !strings.Contains(joined, s) {
			t.Errorf("the SVG does not show %q as text; texts: %q", s, texts)
		}
	}
}

// TestRenderSVGEmpty renders a result without measurements.
func TestRenderSVGEmpty(t *testing.T) {
	var b bytes.Buffer
	if err := (&Result{}).WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	_, texts := svgTexts(t, b.Bytes())
	n := 0
	for _, s := range texts {
		if s == "no data" {
			n++
		}
	}
	if n != 4 {
		t.Errorf("an empty result should say \"no data\" in each of the 4 charts, got %d: %q", n, texts)
	}
}

// TestRenderBarLength checks the bar scales.
func TestRenderBarLength(t *testing.T) {
	lin, lg := svgChart{}, svgChart{log: true}
	tests := []struct {
		name   string
		c      svgChart
		v, top float64
		want   float64
	}{
		{"linear top is full length", lin, 10, 10, svgBarMax},
		{"linear half", lin, 5, 10, svgBarMax / 2},
		{"linear tiny is still visible", lin, 1e-9, 10, 1},
		{"zero is empty", lin, 0, 10, 0},
		{"negative is empty", lin, -1, 10, 0},
		{"log top is full length", lg, 1000, 1000, svgBarMax},
		{"log one decade of six", lg, 0.01, 1000, svgBarMax / 6},
		{"log below the floor is visible", lg, 0.0001, 1000, 1},
		{"log all below the floor", lg, 0.0005, 0.0005, svgBarMax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.c.length(tt.v, tt.top)
			if diff := got - tt.want; diff > 1e-9 || diff < -1e-9 {
				t.Errorf("length(%v, %v) = %v, want %v", tt.v, tt.top, got, tt.want)
			}
		})
	}
}

// TestBenchSaveLoad writes a result and reads it back.
func TestBenchSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	r := sampleResult()
	if err := Save(dir, r); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("Load = %+v, want %+v", got, r)
	}
	raw, err := os.ReadFile(filepath.Join(dir, JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"timestamp", "target", "go_version", "params", "verify", "revocation"} {
		if _, ok := m[k]; !ok {
			t.Errorf("bench.json lacks %q", k)
		}
	}
	svg, err := os.ReadFile(filepath.Join(dir, SVGFile))
	if err != nil {
		t.Fatal(err)
	}
	svgTexts(t, svg)
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("the output directory has %d entries, want bench.json and bench.svg only", len(entries))
	}
}
