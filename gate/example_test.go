package gate_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/gate"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store/memory"
)

// deployment builds what an application embedding Gatehouse holds (on the
// memory backend here; SQLite or PostgreSQL in production) and logs alice
// in, as POST /v1/sessions would.
func deployment() (*account.Service, *session.Manager, session.Secret) {
	ctx := context.Background()
	st := memory.New(nil)
	// InsecureFastParamsForTests keeps the example fast; an application
	// uses account.Config{} (the secure defaults).
	accounts, err := account.New(st, account.Config{Params: account.InsecureFastParamsForTests()})
	if err != nil {
		panic(err)
	}
	sessions, err := session.NewManager(st, session.Config{})
	if err != nil {
		panic(err)
	}
	alice, err := accounts.Register(ctx, "alice", "correct horse battery")
	if err != nil {
		panic(err)
	}
	secret, _, err := sessions.Create(ctx, alice.ID, session.Meta{})
	if err != nil {
		panic(err)
	}
	return accounts, sessions, secret
}

func Example() {
	accounts, sessions, secret := deployment()
	g, err := gate.New(gate.Config{Sessions: sessions, Users: accounts, Dev: true})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /dashboard", g.RequireSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := gate.PrincipalFrom(r.Context())
		fmt.Fprintf(w, "hello %s (%s)", p.Username, p.Mode)
	})))

	// A browser with the session cookie.
	r := httptest.NewRequest("GET", "/dashboard", nil)
	r.AddCookie(&http.Cookie{Name: "gh_session", Value: secret.Encode()})
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Body)

	// Without it.
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/dashboard", nil))
	fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
	// Output:
	// 200 hello alice (session)
	// 401 Bearer
}

func ExampleGate_RequireRole() {
	accounts, sessions, secret := deployment()
	g, err := gate.New(gate.Config{Sessions: sessions, Users: accounts, Dev: true})
	if err != nil {
		panic(err)
	}
	admin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "admin page") })
	// RequireRole goes inside an authenticating middleware.
	h := g.RequireAny(g.RequireRole("admin")(admin))

	r := httptest.NewRequest("GET", "/admin", nil)
	r.AddCookie(&http.Cookie{Name: "gh_session", Value: secret.Encode()})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Header().Get("Content-Type"))
	// Output: 403 application/problem+json
}

// Unsafe requests authenticated by a cookie need the CSRF token bound to
// the credential; a page gets it from the principal.
func ExamplePrincipal_CSRFToken() {
	accounts, sessions, secret := deployment()
	g, err := gate.New(gate.Config{Sessions: sessions, Users: accounts, Dev: true})
	if err != nil {
		panic(err)
	}
	var token string
	mux := http.NewServeMux()
	mux.Handle("GET /form", g.RequireSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := gate.PrincipalFrom(r.Context())
		token = p.CSRFToken // rendered into the page, e.g. <meta name="csrf-token">
	})))
	mux.Handle("POST /save", g.RequireSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "saved")
	})))
	send := func(method, path, csrf string) int {
		r := httptest.NewRequest(method, path, nil)
		r.AddCookie(&http.Cookie{Name: "gh_session", Value: secret.Encode()})
		if csrf != "" {
			r.Header.Set("X-CSRF-Token", csrf)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w.Code
	}
	send("GET", "/form", "")
	fmt.Println("without the token:", send("POST", "/save", ""))
	fmt.Println("with the token:", send("POST", "/save", token))
	// Output:
	// without the token: 403
	// with the token: 200
}

// A custom OnError sends browsers without a session to the login page and
// leaves every other answer to WriteProblem.
func ExampleWriteProblem() {
	accounts, sessions, _ := deployment()
	g, err := gate.New(gate.Config{
		Sessions: sessions, Users: accounts, Dev: true,
		OnError: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, gate.ErrNoCredential) && r.Method == http.MethodGet {
				http.Redirect(w, r, "/auth/login", http.StatusSeeOther)
				return
			}
			gate.WriteProblem(w, err)
		},
	})
	if err != nil {
		panic(err)
	}
	h := g.RequireSession(http.NotFoundHandler())
	for _, cookie := range []string{"", "gh_session=stale"} {
		r := httptest.NewRequest("GET", "/dashboard", nil)
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Header().Get("Location")+w.Header().Get("WWW-Authenticate"))
	}
	// Output:
	// 303 /auth/login
	// 401 Bearer error="invalid_token"
}
