-- A terminal's capture photo of a door pass: a file of kind access_photo,
-- read through acs/v1/access_records/:id/access_photo. Door records are
-- listed by tenant and time.
ALTER TABLE user_flows ADD COLUMN photo_file_id TEXT;
CREATE INDEX user_flows_tenant_time ON user_flows(tenant_id, check_time, record_id);
CREATE INDEX user_flows_photo ON user_flows(photo_file_id) WHERE photo_file_id IS NOT NULL;
