-- Blobs whose fate is open: a key here may name an object no file row
-- protects. An upload to a store other nodes share records its key (with
-- the time) before its first byte is written, and drops it in the
-- transaction that inserts the file row; a deleted file row leaves its key
-- here with created_at 0 ("doomed") until its blob is gone. The start-up
-- sweep deletes the blobs of doomed keys and of upload keys older than
-- orphan_grace_secs, and never an object this table does not name: in a
-- bucket, an unknown object may be another deployment's (a restored copy of
-- this data directory shares its namespace).
CREATE TABLE blob_intents (
    key        TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
);

CREATE TRIGGER files_deleted_doom_blob AFTER DELETE ON files
BEGIN
    INSERT INTO blob_intents(key, created_at) VALUES (OLD.file_id, 0)
        ON CONFLICT(key) DO UPDATE SET created_at = 0;
END;
