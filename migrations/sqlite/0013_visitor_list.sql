-- Visitors travel to terminals in a list of their own, with a version of
-- their own (`visitor_version`, +1 a change, as `perm_version` is for
-- staff): its change log, and how far each terminal was sent it.
ALTER TABLE tenants ADD COLUMN visitor_version INTEGER NOT NULL DEFAULT 0;
CREATE TABLE visitor_changes (
    tenant_id       INTEGER NOT NULL REFERENCES tenants(id),
    visitor_version INTEGER NOT NULL,
    changes         TEXT NOT NULL,       -- JSON, as tenant_changes
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, visitor_version)
);
ALTER TABLE devices ADD COLUMN seen_visitor_version INTEGER NOT NULL DEFAULT 0;
