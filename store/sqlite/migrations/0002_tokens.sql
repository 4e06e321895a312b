-- 0002: token mode: signing keys, refresh families and tokens, revocations.
--
-- Times are INTEGER unix nanoseconds (UTC); NULL stands for the zero time.

-- removed is 0 or 1, and once 1 it stays 1 (UpdateSigningKey ORs it in).
CREATE TABLE signing_keys (
    kid        TEXT    NOT NULL PRIMARY KEY,
    alg        TEXT    NOT NULL,
    sealed     BLOB    NOT NULL,
    public_key BLOB    NOT NULL,
    created_at INTEGER,
    signs_from INTEGER,
    retired_at INTEGER,
    remove_at  INTEGER,
    removed    INTEGER NOT NULL DEFAULT 0 CHECK (removed IN (0, 1))
) STRICT, WITHOUT ROWID;

-- A family is one login in token mode; its id is the access tokens' sid.
CREATE TABLE refresh_families (
    id              TEXT    NOT NULL PRIMARY KEY,
    user_id         TEXT    NOT NULL,
    created_at      INTEGER,
    last_used_at    INTEGER,
    idle_expires_at INTEGER,
    expires_at      INTEGER,
    revoked_at      INTEGER,
    delivery        TEXT    NOT NULL,
    user_agent      TEXT    NOT NULL,
    ip              TEXT    NOT NULL
) STRICT, WITHOUT ROWID;

-- FamiliesByUser and RevokeUserFamilies go through this index.
CREATE INDEX refresh_families_user_created ON refresh_families (user_id, created_at);

-- A refresh token's primary key is the SHA-256 of its bytes; the token
-- itself is never stored. A family's tokens go with it.
CREATE TABLE refresh_tokens (
    hash            BLOB    NOT NULL PRIMARY KEY,
    family_id       TEXT    NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    generation      INTEGER NOT NULL,
    parent_hash     BLOB,
    created_at      INTEGER,
    idle_expires_at INTEGER,
    rotated_at      INTEGER,
    children        INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;

CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- The revocation entries, one table per kind: denylisted jtis, revoked
-- sids, and users' revoke-all times. An entry is live while until is later
-- than now; Purge deletes the others.
CREATE TABLE revoked_tokens (
    jti   TEXT    NOT NULL PRIMARY KEY,
    until INTEGER
) STRICT, WITHOUT ROWID;

CREATE TABLE revoked_sids (
    sid   TEXT    NOT NULL PRIMARY KEY,
    until INTEGER
) STRICT, WITHOUT ROWID;

CREATE TABLE revoked_users (
    user_id        TEXT    NOT NULL PRIMARY KEY,
    revoked_before INTEGER,
    until          INTEGER
) STRICT, WITHOUT ROWID;
