package secret_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/gatehouse-auth/gatehouse/internal/secret"
)

const value = "hunter2-very-secret"

func TestFormatVerbs(t *testing.T) {
	s := secret.String(value)
	type Config struct {
		User     string
		Password secret.String
	}
	cfg := Config{User: "alice", Password: s}
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"%v", fmt.Sprintf("%v", s), "[REDACTED]"},
		{"%+v", fmt.Sprintf("%+v", s), "[REDACTED]"},
		{"%#v", fmt.Sprintf("%#v", s), "[REDACTED]"},
		{"%s", fmt.Sprintf("%s", s), "[REDACTED]"},
		{"%q", fmt.Sprintf("%q", s), `"[REDACTED]"`},
		{"%x", fmt.Sprintf("%x", s), "[REDACTED]"},
		{"%X", fmt.Sprintf("%X", s), "[REDACTED]"},
		{"%T", fmt.Sprintf("%T", s), "secret.String"},
		{"%10s", fmt.Sprintf("%10s", s), "[REDACTED]"},
		{"%.3s", fmt.Sprintf("%.3s", s), "[REDACTED]"},
		{"%d", fmt.Sprintf("%d", s), "[REDACTED]"},
		{"Sprint", fmt.Sprint(s), "[REDACTED]"},
		{"Sprintln", fmt.Sprintln(s), "[REDACTED]\n"},
		{"String", s.String(), "[REDACTED]"},
		{"GoString", s.GoString(), "[REDACTED]"},
		{"pointer %v", fmt.Sprintf("%v", &s), "[REDACTED]"},
		{"struct %v", fmt.Sprintf("%v", cfg), "{alice [REDACTED]}"},
		{"struct %+v", fmt.Sprintf("%+v", cfg), "{User:alice Password:[REDACTED]}"},
		{"struct %#v", fmt.Sprintf("%#v", cfg), `secret_test.Config{User:"alice", Password:[REDACTED]}`},
		{"slice %v", fmt.Sprintf("%v", []secret.String{s, s}), "[[REDACTED] [REDACTED]]"},
		{"map %v", fmt.Sprintf("%v", map[string]secret.String{"k": s}), "map[k:[REDACTED]]"},
		{"wrapped error", fmt.Errorf("login with %v: %w", s, errors.New("bad")).Error(), "login with [REDACTED]: bad"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
			if strings.Contains(tt.got, value) {
				t.Errorf("the secret leaked: %q", tt.got)
			}
		})
	}
}

func TestReveal(t *testing.T) {
	if got := secret.String(value).Reveal(); got != value {
		t.Fatalf("Reveal() = %q, want %q", got, value)
	}
}

func TestSlog(t *testing.T) {
	s := secret.String(value)
	type Login struct {
		User     string
		Password secret.String
	}
	attrs := []struct {
		name string
		attr slog.Attr
	}{
		{"Any", slog.Any("password", s)},
		{"Any pointer", slog.Any("password", &s)},
		{"group", slog.Group("login", slog.String("user", "alice"), slog.Any("password", s))},
		{"struct", slog.Any("login", Login{User: "alice", Password: s})},
		{"slice", slog.Any("passwords", []secret.String{s})},
	}
	handlers := []struct {
		name string
		new  func(*bytes.Buffer) slog.Handler
	}{
		{"text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }},
		{"json", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }},
	}
	for _, h := range handlers {
		for _, a := range attrs {
			t.Run(h.name+"/"+a.name, func(t *testing.T) {
				var buf bytes.Buffer
				slog.New(h.new(&buf)).LogAttrs(t.Context(), slog.LevelInfo, "login", a.attr)
				out := buf.String()
				if strings.Contains(out, value) {
					t.Fatalf("the secret leaked: %s", out)
				}
				if !strings.Contains(out, "[REDACTED]") {
					t.Fatalf("no redaction marker: %s", out)
				}
			})
		}
	}
	// The positional form of Info goes through the same LogValue.
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("login", "password", s)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if line["password"] != "[REDACTED]" {
		t.Fatalf("password = %v", line["password"])
	}
}

func TestJSON(t *testing.T) {
	type Config struct {
		Password secret.String `json:"password"`
	}
	b, err := json.Marshal(Config{Password: value})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"password":"[REDACTED]"}`; got != want {
		t.Fatalf("json.Marshal = %s, want %s", got, want)
	}
	// Decoding still fills the value: configuration files can hold secrets.
	var cfg Config
	if err := json.Unmarshal([]byte(`{"password":"`+value+`"}`), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Password.Reveal() != value {
		t.Fatalf("decoded %q", cfg.Password.Reveal())
	}
}

func ExampleString() {
	password := secret.String("correct horse battery staple")
	fmt.Printf("%v %s %q %#v\n", password, password, password, password)
	fmt.Println(len(password.Reveal()))
	// Output:
	// [REDACTED] [REDACTED] "[REDACTED]" [REDACTED]
	// 28
}
