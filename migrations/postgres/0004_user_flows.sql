-- Punch records ("user flows"): what terminals report (sn set) and what
-- other systems create over the API, in one table, read back through the
-- platform's user_flows calls. Replaces `checkins`, whose rows move here.
CREATE TABLE user_flows (
    record_id     TEXT PRIMARY KEY,          -- decimal number
    tenant_id     BIGINT NOT NULL REFERENCES tenants(id),
    person_id     BIGINT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    check_time    BIGINT NOT NULL,
    creator_id    TEXT NOT NULL,
    location_name TEXT NOT NULL,
    comment       TEXT NOT NULL DEFAULT '',
    idempotent_id TEXT,                      -- unique per tenant when set
    sn            TEXT,                      -- the terminal that recorded it
    pass_type     BIGINT,
    pass_method   BIGINT,
    extras        TEXT NOT NULL DEFAULT '{}', -- JSON: optional API fields
    created_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX user_flows_idempotent ON user_flows(tenant_id, idempotent_id);
CREATE INDEX user_flows_person_time ON user_flows(person_id, check_time);

INSERT INTO user_flows(record_id, tenant_id, person_id, check_time, creator_id, location_name,
                       idempotent_id, sn, pass_type, pass_method, created_at)
SELECT CAST(FLOOR(random() * 9.2e18) AS BIGINT)::TEXT, c.tenant_id, c.person_id, c.timestamp,
       p.user_id, c.sn, 'terminal:' || c.sn || ':' || c.timestamp || ':' || p.user_id,
       c.sn, c.pass_type, c.pass_method, c.received_at
FROM checkins c JOIN people p ON p.id = c.person_id;

DROP TABLE checkins;
