-- User access tokens (`u-…`) act for one person of the app's tenant; a
-- person's removal revokes them.
ALTER TABLE tokens ADD COLUMN person_id INTEGER REFERENCES people(id) ON DELETE CASCADE;
