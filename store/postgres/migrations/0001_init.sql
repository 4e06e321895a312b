-- 0001: users, sessions, audit events, signing keys, refresh families and
-- tokens, and revocations.
--
-- Times are BIGINT unix nanoseconds (UTC), not timestamptz, which keeps only
-- microseconds; NULL stands for the zero time. Identifiers that are ordered
-- or compared (usernames, ids) use the "C" collation: byte order, whatever
-- the database's locale.

CREATE TABLE users (
    id             TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    username       TEXT COLLATE "C" NOT NULL,
    password_hash  TEXT   NOT NULL,
    roles          TEXT[] NOT NULL DEFAULT '{}',
    created_at     BIGINT,
    updated_at     BIGINT,
    revoked_before BIGINT
);

-- ListUsers pages through this index.
CREATE UNIQUE INDEX users_username ON users (username);

-- A session's primary key is the SHA-256 of its secret; the secret itself is
-- never stored.
CREATE TABLE sessions (
    hash            BYTEA NOT NULL PRIMARY KEY,
    id              TEXT COLLATE "C" NOT NULL,
    user_id         TEXT COLLATE "C" NOT NULL,
    created_at      BIGINT,
    last_seen_at    BIGINT,
    idle_expires_at BIGINT,
    expires_at      BIGINT,
    user_agent      TEXT  NOT NULL,
    ip              TEXT  NOT NULL
);

CREATE UNIQUE INDEX sessions_id ON sessions (id);
CREATE INDEX sessions_user_created ON sessions (user_id, created_at);

-- seq orders events appended at the same time.
CREATE TABLE audit_events (
    seq        BIGSERIAL PRIMARY KEY,
    id         TEXT COLLATE "C" NOT NULL,
    time       BIGINT,
    type       TEXT COLLATE "C" NOT NULL,
    severity   TEXT NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL,
    username   TEXT NOT NULL,
    session_id TEXT NOT NULL,
    actor_id   TEXT NOT NULL,
    ip         TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    reason     TEXT NOT NULL
);

CREATE UNIQUE INDEX audit_events_id ON audit_events (id);
-- Events() walks one of these backwards (time DESC NULLS LAST, seq DESC):
-- all events, by user, or by type.
CREATE INDEX audit_events_time ON audit_events (time NULLS FIRST, seq);
CREATE INDEX audit_events_user_time ON audit_events (user_id, time NULLS FIRST, seq);
CREATE INDEX audit_events_type_time ON audit_events (type, time NULLS FIRST, seq);

-- removed, once true, stays true (UpdateSigningKey ORs it in).
CREATE TABLE signing_keys (
    kid        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    alg        TEXT    NOT NULL,
    sealed     BYTEA   NOT NULL,
    public_key BYTEA   NOT NULL,
    created_at BIGINT,
    signs_from BIGINT,
    retired_at BIGINT,
    remove_at  BIGINT,
    removed    BOOLEAN NOT NULL DEFAULT false
);

-- A family is one login in token mode; its id is the access tokens' sid.
CREATE TABLE refresh_families (
    id              TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    user_id         TEXT COLLATE "C" NOT NULL,
    created_at      BIGINT,
    last_used_at    BIGINT,
    idle_expires_at BIGINT,
    expires_at      BIGINT,
    revoked_at      BIGINT,
    delivery        TEXT NOT NULL,
    user_agent      TEXT NOT NULL,
    ip              TEXT NOT NULL
);

-- FamiliesByUser and RevokeUserFamilies go through this index.
CREATE INDEX refresh_families_user_created ON refresh_families (user_id, created_at);

-- A refresh token's primary key is the SHA-256 of its bytes; the token
-- itself is never stored. A family's tokens go with it.
CREATE TABLE refresh_tokens (
    hash            BYTEA   NOT NULL PRIMARY KEY,
    family_id       TEXT COLLATE "C" NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    generation      INTEGER NOT NULL,
    parent_hash     BYTEA,
    created_at      BIGINT,
    idle_expires_at BIGINT,
    rotated_at      BIGINT,
    children        INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- The revocation entries, one table per kind: denylisted jtis, revoked
-- sids, and users' revoke-all times. An entry is live while until is later
-- than now; Purge deletes the others.
CREATE TABLE revoked_tokens (
    jti   TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    until BIGINT
);

CREATE TABLE revoked_sids (
    sid   TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    until BIGINT
);

CREATE TABLE revoked_users (
    user_id        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    revoked_before BIGINT,
    until          BIGINT
);
