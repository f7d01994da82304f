-- Until when a terminal counts as logged in: the node holding its
-- connection renews this lease while the connection lives and clears it
-- when the connection ends, so every node (and the CLI) shows the same
-- online status; a node that dies stops renewing, and the lease runs out.
ALTER TABLE devices ADD COLUMN online_until BIGINT;
