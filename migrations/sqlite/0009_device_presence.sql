-- Until when a terminal counts as logged in: the node holding its
-- connection renews this lease while the connection lives and clears it
-- when the connection ends, so every node (and the CLI) shows the same
-- online status; a node that dies stops renewing, and the lease runs out.
-- online_owner names the connection holding the lease (node and
-- connection number): only it renews or clears the lease, so an old
-- connection that ends late leaves a newer one's lease alone.
ALTER TABLE devices ADD COLUMN online_until INTEGER;
ALTER TABLE devices ADD COLUMN online_owner TEXT;
