-- The person a stored photo was bound to (attendance face_key, door-access
-- face and crop), kept after the binding is replaced, so that erasing a
-- person finds every photo of them, not only the current ones.
ALTER TABLE files ADD COLUMN person_id INTEGER;
CREATE INDEX files_person ON files(person_id) WHERE person_id IS NOT NULL;
UPDATE files SET person_id = (SELECT s.person_id FROM attendance_settings s WHERE s.face_key = files.file_id)
 WHERE file_id IN (SELECT face_key FROM attendance_settings);
UPDATE files SET person_id = (SELECT a.person_id FROM acs_users a
                               WHERE a.face_file_id = files.file_id OR a.crop_file_id = files.file_id)
 WHERE file_id IN (SELECT face_file_id FROM acs_users WHERE face_file_id IS NOT NULL
                   UNION SELECT crop_file_id FROM acs_users WHERE crop_file_id IS NOT NULL);

-- Every read or write of biometric data: who (an app, a user acting
-- through an app, a device, an administrator), whom (the person), what,
-- when and with what result. Never the data itself. Rows outlive the
-- people they name (an erasure is itself audited).
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    tenant_id  INTEGER NOT NULL,
    at_ms      INTEGER NOT NULL,
    actor_kind TEXT NOT NULL,          -- app | user | device | admin
    actor      TEXT NOT NULL,          -- app_id, app_id/user_id, device sn, admin name
    action     TEXT NOT NULL,          -- e.g. photo.download, template.sync, person.erase
    subject    TEXT,                   -- user_id of the person concerned
    object     TEXT,                   -- file_id, file_token, algorithm and slots
    result     TEXT NOT NULL,          -- ok, or the error code
    log_id     TEXT                    -- the request's X-Tt-Logid
);
CREATE INDEX audit_log_tenant ON audit_log(tenant_id, id);
