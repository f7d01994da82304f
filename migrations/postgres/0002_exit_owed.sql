-- A cancelled enrolment whose capture page is still open on its device:
-- the node holding the device's connection sends push_exit_page and clears
-- the flag (a cancel from the CLI or from another node cannot reach the
-- connection itself).
ALTER TABLE enrolments ADD COLUMN exit_owed BIGINT NOT NULL DEFAULT 0;
CREATE INDEX enrolments_exit_owed ON enrolments(sn) WHERE exit_owed = 1;
