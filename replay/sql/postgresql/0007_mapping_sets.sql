-- Each distinct set of mapping file versions once (replay/sets.py; as SQLite's 0011).
CREATE TABLE mapping_sets (
    digest    bytea PRIMARY KEY,
    versions  bytea NOT NULL
);
