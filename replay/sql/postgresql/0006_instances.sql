-- The broker instances sharing this journal and the configuration version each serves
-- (replay/instances.py): replaced at each announcement, outside the hash chain.
CREATE TABLE instances (
    id              text PRIMARY KEY,
    host            text NOT NULL,
    pid             integer NOT NULL,
    config_version  text NOT NULL,
    started_at      double precision NOT NULL,
    seen_at         double precision NOT NULL
);
