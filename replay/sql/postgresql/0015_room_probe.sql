-- A table that only ever holds rows rolled back: a journal whose writes were refused for want of
-- the server's space proves room by inserting pages of random bytes here (replay/pgroom.py), in
-- the tablespace of the journal's own tables (this migration creates it where they are), with no
-- privilege beyond INSERT on a journal table: no TEMP on the database, no CREATE in a tablespace.
-- PLAIN storage: a row is neither compressed nor moved out of line, so each takes a page.
CREATE TABLE room_probe (b bytea NOT NULL);
ALTER TABLE room_probe ALTER COLUMN b SET STORAGE PLAIN;
