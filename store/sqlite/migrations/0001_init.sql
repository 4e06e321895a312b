-- 0001: users, sessions and audit events.
--
-- Times are INTEGER unix nanoseconds (UTC); NULL stands for the zero time.
-- Tables are STRICT, so a value of the wrong type is refused, not converted.

CREATE TABLE users (
    id             TEXT    NOT NULL PRIMARY KEY,
    username       TEXT    NOT NULL,
    password_hash  TEXT    NOT NULL,
    roles          TEXT    NOT NULL DEFAULT '[]', -- JSON array of strings
    created_at     INTEGER,
    updated_at     INTEGER,
    revoked_before INTEGER
) STRICT, WITHOUT ROWID;

-- Usernames are compared byte for byte (BINARY), as the normalised form
-- requires; ListUsers pages through this index.
CREATE UNIQUE INDEX users_username ON users (username);

-- A session's primary key is the SHA-256 of its secret; the secret itself is
-- never stored.
CREATE TABLE sessions (
    hash            BLOB    NOT NULL PRIMARY KEY,
    id              TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    created_at      INTEGER,
    last_seen_at    INTEGER,
    idle_expires_at INTEGER,
    expires_at      INTEGER,
    user_agent      TEXT    NOT NULL,
    ip              TEXT    NOT NULL
) STRICT, WITHOUT ROWID;

CREATE UNIQUE INDEX sessions_id ON sessions (id);
CREATE INDEX sessions_user_created ON sessions (user_id, created_at);

-- seq orders events appended at the same time; AUTOINCREMENT never reuses a
-- value, so the order of insertion is kept even across deletions.
CREATE TABLE audit_events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL,
    time       INTEGER,
    type       TEXT    NOT NULL,
    severity   TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    username   TEXT    NOT NULL,
    session_id TEXT    NOT NULL,
    actor_id   TEXT    NOT NULL,
    ip         TEXT    NOT NULL,
    user_agent TEXT    NOT NULL,
    reason     TEXT    NOT NULL
) STRICT;

CREATE UNIQUE INDEX audit_events_id ON audit_events (id);
-- Events() walks one of these backwards: all events, by user, or by type.
CREATE INDEX audit_events_time ON audit_events (time);
CREATE INDEX audit_events_user_time ON audit_events (user_id, time);
CREATE INDEX audit_events_type_time ON audit_events (type, time);
