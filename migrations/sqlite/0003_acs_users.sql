-- Door-access (ACS) directory: the tenant's people granted door access, with
-- their card number and enrolled face (original and crop, both in files).
CREATE TABLE acs_users (
    person_id    INTEGER PRIMARY KEY REFERENCES people(id) ON DELETE CASCADE,
    tenant_id    INTEGER NOT NULL REFERENCES tenants(id),
    card         INTEGER,
    face_file_id TEXT REFERENCES files(file_id),
    crop_file_id TEXT REFERENCES files(file_id),
    face_box     TEXT,                   -- JSON: the face in the upright original
    granted_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX acs_users_tenant ON acs_users(tenant_id, person_id);
