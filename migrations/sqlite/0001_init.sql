-- facehub metadata, version 1. Times are Unix seconds (UTC).

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE tenants (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    tenant_key TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE apps (
    app_id      TEXT PRIMARY KEY,
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id),
    secret_hash TEXT NOT NULL,
    scopes      TEXT NOT NULL,          -- space separated
    disabled    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);
CREATE INDEX apps_tenant ON apps(tenant_id);

-- Only a hash identifies a token; the value itself is kept sealed so that
-- the platform's "same token while >= 30 min remain" rule can be honoured.
CREATE TABLE tokens (
    token_hash TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,            -- 'tenant' | 'app'
    app_id     TEXT NOT NULL REFERENCES apps(app_id) ON DELETE CASCADE,
    tenant_id  INTEGER NOT NULL REFERENCES tenants(id),
    sealed     BLOB NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX tokens_app ON tokens(app_id, kind, expires_at);

CREATE TABLE people (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id),
    user_id     TEXT NOT NULL,
    union_id    TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    employee_no TEXT,
    extra       TEXT NOT NULL DEFAULT '{}',  -- JSON object of further CSV columns
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, user_id),
    UNIQUE (tenant_id, employee_no)
);

CREATE TABLE open_ids (
    open_id   TEXT PRIMARY KEY,
    app_id    TEXT NOT NULL REFERENCES apps(app_id) ON DELETE CASCADE,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    UNIQUE (app_id, person_id)
);

-- Stored files (attendance photos for now). The blob key is the file id.
CREATE TABLE files (
    file_id    TEXT PRIMARY KEY,
    tenant_id  INTEGER NOT NULL REFERENCES tenants(id),
    kind       TEXT NOT NULL,            -- 'attendance_photo'
    file_name  BLOB NOT NULL,            -- sealed: names are often people's names
    format     TEXT NOT NULL,            -- 'jpeg' | 'png'
    width      INTEGER NOT NULL,
    height     INTEGER NOT NULL,
    size       INTEGER NOT NULL,
    sha256     TEXT NOT NULL,            -- of the sealed blob, not of the photo
    key_id     INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX files_tenant ON files(tenant_id, kind);

CREATE TABLE attendance_settings (
    person_id            INTEGER PRIMARY KEY REFERENCES people(id) ON DELETE CASCADE,
    face_key             TEXT NOT NULL REFERENCES files(file_id),
    face_key_open        INTEGER NOT NULL DEFAULT 1,
    face_key_update_time INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
