-- ZKTeco terminals (PUSH/ADMS, `/iclock/*`) in the same fleet as the WeCom
-- ones: which protocol a terminal speaks, the UTC offset its clock is set
-- to (its punches carry local wall-clock times), the client addresses it
-- may call from (JSON list of CIDRs; empty: any), and what it last said of
-- itself (JSON: firmware, counts, algorithm versions).
ALTER TABLE devices ADD COLUMN protocol TEXT NOT NULL DEFAULT 'wecom';
ALTER TABLE devices ADD COLUMN utc_offset_min INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN allow_from TEXT NOT NULL DEFAULT '[]';
ALTER TABLE devices ADD COLUMN push_info TEXT;
-- The commands a ZKTeco terminal was last sent and has not yet confirmed,
-- and how far its address book has come (JSON, the core's `ZkQueue`).
ALTER TABLE devices ADD COLUMN zk_queue TEXT;
-- +1 at every write of the queue: a poll writes only over what it read.
ALTER TABLE devices ADD COLUMN zk_queue_rev INTEGER NOT NULL DEFAULT 0;
-- The next command id: never reset (not even by unbinding), so a late
-- result can never confirm a command it was not the answer to.
ALTER TABLE devices ADD COLUMN zk_next_id INTEGER NOT NULL DEFAULT 1;
-- Serial numbers that called `/iclock/*` before an admin added them: what
-- an admin reads to add them. Bounded by the server (device.pending_max).
CREATE TABLE pending_devices (
    sn          TEXT PRIMARY KEY,
    protocol    TEXT NOT NULL,
    address     TEXT NOT NULL,       -- the client address of the last call
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL
);
