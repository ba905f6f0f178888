-- What a rekey says of each event whose hash it changed, signed with the journal's MAC key: the
-- chain it verified held `old` at `seq`, and holds `new` there since. An instance whose own
-- checkpoints still name the old chain carries them over at open (replay/rekeyed.py).
CREATE TABLE rekeyed (
    seq bigint NOT NULL,
    old bytea NOT NULL,
    new bytea NOT NULL,
    at double precision NOT NULL,
    mac bytea NOT NULL,
    PRIMARY KEY (seq, old)
);
