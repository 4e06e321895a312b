// Package audit records security events: who logged in, who failed, which
// sessions ended and why, what an administrator changed.
//
// Every event has one schema (Event), written twice by a Recorder: as one
// structured log line through log/slog, and to a Store that the admin API
// reads back (GET /v1/admin/audit). Events never hold a password, secret,
// token or cookie; every string field is sanitised before it is written, so
// that a client-supplied value (a username, a User-Agent) cannot forge a log
// line or hide text from the person reading it.
package audit

// Event types. The set is open: a package that audits something new adds a
// constant here, and a default severity in defaultSeverity when it is not
// "info".
const (
	// TypeLoginSuccess is a login with valid credentials.
	TypeLoginSuccess = "login.success"
	// TypeLoginFailure is a login refused for bad credentials.
	TypeLoginFailure = "login.failure"
	// TypeLoginThrottled is a login refused by the throttle before the
	// credentials were checked.
	TypeLoginThrottled = "login.throttled"
	// TypeLogout is a user ending their own session.
	TypeLogout = "logout"
	// TypeSessionCreated is a new session.
	TypeSessionCreated = "session.created"
	// TypeSessionExpired is a session that reached its idle or absolute
	// timeout.
	TypeSessionExpired = "session.expired"
	// TypeSessionRevoked is one session ended by its user from the device
	// list, or by an administrator.
	TypeSessionRevoked = "session.revoked"
	// TypeUserForcedLogout is every session and token of a user ended at once
	// by an administrator.
	TypeUserForcedLogout = "user.forced_logout"
	// TypePasswordChanged is a new password for a user.
	TypePasswordChanged = "password.changed"
	// TypePasswordChangeFailed is a password change refused because the
	// current password given was wrong.
	TypePasswordChangeFailed = "password.change_failed"
	// TypeCSRFRefused is a state-changing request refused by the
	// cross-origin or CSRF-token check.
	TypeCSRFRefused = "csrf.refused"
	// TypeUserCreated is a new account.
	TypeUserCreated = "user.created"
	// TypeRolesChanged is a change of a user's roles.
	TypeRolesChanged = "roles.changed"
	// TypeTokenIssued is a new refresh family and access token (a login in
	// token or hybrid mode).
	TypeTokenIssued = "token.issued"
	// TypeTokenRefreshed is a refresh token rotated for a new pair.
	TypeTokenRefreshed = "token.refreshed"
	// TypeTokenGraceReplay is a just-rotated refresh token presented again
	// within the grace period (parallel refreshes): a sibling pair was issued.
	TypeTokenGraceReplay = "token.grace_replay"
	// TypeTokenReuse is a rotated refresh token presented again after the
	// grace period: the whole family was revoked.
	TypeTokenReuse = "token.reuse_detected"
	// TypeTokenRevoked is an access token denylisted or a refresh family
	// revoked through the revocation endpoint or the device list.
	TypeTokenRevoked = "token.revoked"
	// TypeKeyRotated is a new signing key published.
	TypeKeyRotated = "key.rotated"
	// TypeKeyRemoved is a signing key removed at once (compromise).
	TypeKeyRemoved = "key.removed"
)

// Severities, from routine to needing attention. The log level follows the
// severity: Info, Warn and Error.
const (
	// SeverityInfo is the normal life of accounts and sessions.
	SeverityInfo = "info"
	// SeverityWarning is a refusal or a security-relevant change that is
	// usually benign alone but worth watching in numbers (failed logins,
	// throttling, CSRF refusals, password changes).
	SeverityWarning = "warning"
	// SeverityHigh is an action that changes who can do what or cuts every
	// credential of a user (forced logout, role changes): someone should be
	// able to say it was them.
	SeverityHigh = "high"
)

// defaultSeverity lists the types whose default severity is not info.
var defaultSeverity = map[string]string{
	TypeLoginFailure:         SeverityWarning,
	TypeLoginThrottled:       SeverityWarning,
	TypeCSRFRefused:          SeverityWarning,
	TypePasswordChanged:      SeverityWarning,
	TypePasswordChangeFailed: SeverityWarning,
	TypeUserForcedLogout:     SeverityHigh,
	TypeRolesChanged:         SeverityHigh,
	TypeTokenReuse:           SeverityHigh,
	TypeKeyRotated:           SeverityWarning,
	TypeKeyRemoved:           SeverityHigh,
}

// DefaultSeverity returns the severity an event of type typ gets when the
// recorder is not told otherwise: warning for failed and throttled logins,
// CSRF refusals, and password changes and failed attempts at one; high for forced logouts and role
// changes; info for everything else, including types it does not know.
func DefaultSeverity(typ string) string {
	if s, ok := defaultSeverity[typ]; ok {
		return s
	}
	return SeverityInfo
}

// validSeverity reports whether s is one of the three severities.
func validSeverity(s string) bool {
	return s == SeverityInfo || s == SeverityWarning || s == SeverityHigh
}
