-- A table that only ever holds rows rolled back: a journal whose writes were refused for want of
-- the server's space proves room by inserting pages of random bytes here (replay/pgroom.py),
-- with no privilege beyond INSERT on a journal table: no TEMP on the database, no CREATE in a
-- tablespace.
-- It is made in the tablespace the migrating session's default_tablespace names (the database's
-- own if none), as every journal table is: beside events unless that setting changed since events
-- was made, or either table was moved; where it is not beside events, the probe cannot tell.
-- PLAIN storage: a row is neither compressed nor moved out of line, so each takes a page.
CREATE TABLE room_probe (b bytea NOT NULL);
ALTER TABLE room_probe ALTER COLUMN b SET STORAGE PLAIN;
