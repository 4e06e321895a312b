package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
)

// callAPI sends a request to the embedded Gatehouse API in-process and
// returns its answer. The request is a clone of the browser's r (same
// client address, Host, cookies, Origin and Fetch Metadata headers, and
// X-CSRF-Token), with another method, path and a JSON body: the API applies
// to it exactly the rules it applies to the browser's own requests
// (cross-origin protection, throttling per client address, CSRF on
// cookie-authenticated unsafe requests).
func (a *app) callAPI(r *http.Request, method, path string, body any) *apiResponse {
	in := r.Clone(r.Context())
	in.Method = method
	in.URL = &url.URL{Path: path}
	in.RequestURI = path
	in.Form, in.PostForm, in.MultipartForm = nil, nil, nil
	in.Header.Del("Content-Type")
	in.Body, in.ContentLength = http.NoBody, 0
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			// Only maps of strings are sent: this cannot happen.
			panic(err)
		}
		in.Body, in.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
		in.Header.Set("Content-Type", "application/json")
	}
	res := &apiResponse{header: http.Header{}}
	a.auth.ServeHTTP(res, in)
	if res.status == 0 {
		res.status = http.StatusOK
	}
	return res
}

// apiResponse records the API's answer to an in-process request.
type apiResponse struct {
	status int
	header http.Header
	body   bytes.Buffer
}

func (w *apiResponse) Header() http.Header { return w.header }

func (w *apiResponse) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *apiResponse) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}

// copyCookies hands the cookies the API set (the session cookie at login,
// its clearing at logout) to the browser.
func (w *apiResponse) copyCookies(to http.ResponseWriter) {
	for _, c := range w.header.Values("Set-Cookie") {
		to.Header().Add("Set-Cookie", c)
	}
}

// problemDetail is the detail of the API's problem+json answer, written
// for people; a generic sentence when there is none.
func (w *apiResponse) problemDetail() string {
	var p struct {
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(w.body.Bytes(), &p); err != nil || p.Detail == "" {
		return "The request was refused."
	}
	return p.Detail
}
