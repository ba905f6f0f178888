-- Each instance that opened this journal with a checkpoints file of its own, by the id kept beside
-- that file (it outlives the process, unlike the lease owner id in `instances`), and its last
-- open: the latest rekey whose records it found then (NULL: none), so its checkpoints name the
-- chain after that rekey. Not cleared when the instance stops: `tongban journal prune-rekeyed`
-- keeps a rekey's records while an instance known here has not opened since (replay/rekeyed.py),
-- and `tongban journal forget-instance` drops one gone for good.
CREATE TABLE opened (
    id text PRIMARY KEY,
    host text NOT NULL,
    checkpoints text NOT NULL,
    opened_at double precision NOT NULL,
    rekey_at double precision
);
