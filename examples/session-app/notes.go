package main

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// The notes are the application's own data, kept in memory (they are gone
// when it stops; Gatehouse's accounts and sessions are in the SQLite file).
const (
	maxNotes   = 100  // per user
	maxNoteLen = 1000 // characters
)

// Reasons add refuses a note.
var (
	errEmptyNote = errors.New("empty note")
	errLongNote  = errors.New("note too long")
	errTooMany   = errors.New("too many notes")
)

// noteMessages say why a note was refused, to the person who wrote it.
var noteMessages = map[error]string{
	errEmptyNote: "A note cannot be empty.",
	errLongNote:  "A note is at most 1000 characters of text.",
	errTooMany:   "You have 100 notes already.",
}

// note is one note.
type note struct {
	Text    string
	Created time.Time
}

// notebook holds each user's notes, by user id.
type notebook struct {
	mu     sync.Mutex
	byUser map[string][]note
}

// add stores a note for the user, or says why not (one of the errors of
// noteMessages).
func (n *notebook) add(userID, text string, now time.Time) error {
	text = strings.TrimSpace(text)
	switch {
	case text == "":
		return errEmptyNote
	case !utf8.ValidString(text) || utf8.RuneCountInString(text) > maxNoteLen:
		return errLongNote
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.byUser[userID]) >= maxNotes {
		return errTooMany
	}
	n.byUser[userID] = append(n.byUser[userID], note{Text: text, Created: now.UTC()})
	return nil
}

// list returns the user's notes, newest first.
func (n *notebook) list(userID string) []note {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := slices.Clone(n.byUser[userID])
	slices.Reverse(l)
	return l
}
