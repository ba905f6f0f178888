-- Each distinct set of mapping file versions once (replay/sets.py): rows and events refer to it
-- by its SHA-256, instead of repeating some 450 bytes of file names and hashes per exchange.
CREATE TABLE mapping_sets (
    digest    BLOB PRIMARY KEY,
    versions  BLOB NOT NULL
) WITHOUT ROWID;
