-- Terminals speaking the WeCom device protocol, the biometric templates they
-- enrol, the change log they sync from, enrolments started from the admin
-- side, and punch records.

-- WeCom's user_type: 0 employee, 1 visitor, 2 student. (userid, user_type)
-- names a person on the device protocol.
ALTER TABLE people ADD COLUMN user_type INTEGER NOT NULL DEFAULT 0;
-- Per-person counters the devices compare (`fa_ver`, `fp_ver`).
ALTER TABLE people ADD COLUMN fa_ver INTEGER NOT NULL DEFAULT 0;
ALTER TABLE people ADD COLUMN fp_ver INTEGER NOT NULL DEFAULT 0;

-- The address-book version: +1 per change, never reused.
ALTER TABLE tenants ADD COLUMN perm_version INTEGER NOT NULL DEFAULT 0;

-- One row per version: who was created, updated (templates) or deleted.
CREATE TABLE tenant_changes (
    tenant_id    INTEGER NOT NULL REFERENCES tenants(id),
    perm_version INTEGER NOT NULL,
    changes      TEXT NOT NULL,          -- JSON {create_user, update_user, delete_user}
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, perm_version)
);

CREATE TABLE devices (
    sn               TEXT PRIMARY KEY,
    tenant_id        INTEGER NOT NULL REFERENCES tenants(id),
    secret_no        BLOB NOT NULL,      -- sealed: the factory secret that signs `register`
    active_code_hash TEXT UNIQUE,        -- SHA-256 of the code `register` issued
    register_ts      INTEGER,            -- timestamp and nonce of the last `register`:
    register_nonce   TEXT,               --   an older or repeated one is a replay
    secret           BLOB,               -- sealed: what `active` hands out once bound
    secret_hash      TEXT UNIQUE,        -- SHA-256 of it: `subscribe_corp` names no sn
    bound            INTEGER NOT NULL DEFAULT 0,
    firmware_version TEXT,
    fa_algorithms    TEXT NOT NULL DEFAULT '[]',  -- JSON, priority order
    fp_algorithms    TEXT NOT NULL DEFAULT '[]',
    seen_version     INTEGER NOT NULL DEFAULT 0,  -- newest perm_version the device was sent
    last_seen        INTEGER,
    created_at       INTEGER NOT NULL
);
CREATE INDEX devices_tenant ON devices(tenant_id);

-- Templates: irreversible features, sealed like photos.
CREATE TABLE templates (
    person_id  INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    modality   TEXT NOT NULL CHECK (modality IN ('fa', 'fp')),
    algorithm  TEXT NOT NULL,
    slot       INTEGER NOT NULL,
    data       BLOB NOT NULL,            -- sealed
    digest     TEXT NOT NULL,            -- keyed hash of the plain data, for idempotency
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (person_id, modality, algorithm, slot)
);

-- Enrolments started from the admin side (`push_enter_page`,
-- `push_user_face`), and their outcome as the device reported it.
CREATE TABLE enrolments (
    oper_id     TEXT PRIMARY KEY,
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id),
    person_id   INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    sn          TEXT NOT NULL REFERENCES devices(sn) ON DELETE CASCADE,
    kind        TEXT NOT NULL,           -- 'fa' | 'fp' (enter_page) | 'photo' (user_face)
    file_ids    TEXT NOT NULL DEFAULT '[]', -- JSON: the photos, for 'photo'
    status      TEXT NOT NULL,           -- queued | sent | succeeded | failed | timed_out
    errcode     INTEGER,
    errmsg      TEXT,
    created_at  INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX enrolments_pending ON enrolments(status, sn);

CREATE TABLE checkins (
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id),
    person_id   INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    sn          TEXT NOT NULL,
    timestamp   INTEGER NOT NULL,
    pass_type   INTEGER,
    pass_method INTEGER,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (person_id, timestamp, sn)
);
