-- Sessions of the admin console: only a hash of the cookie's token is
-- stored; the CSRF token is sent back in a header on every change.
CREATE TABLE admin_sessions (
    token_hash TEXT PRIMARY KEY,
    csrf       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
