package httpapi

import (
	_ "embed"
	"net/http"
)

// openAPIDocument is the OpenAPI 3 description of the whole API
// (openapi.yaml), served at GET /openapi.yaml. openapi_test.go checks it
// against the handlers: every route is documented, and every documented
// request and response shape is validated on real exchanges.
//
//go:embed openapi.yaml
var openAPIDocument []byte

// openAPI is GET /openapi.yaml.
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Content-Type", "application/yaml")
	h.Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	// A failed write means the client has gone: there is no one to answer.
	_, _ = w.Write(openAPIDocument)
	return nil
}
