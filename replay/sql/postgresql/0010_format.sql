-- Which generation of the stored format the journal's newest writer wrote (replay/formats.py;
-- see replay/sql/sqlite/0015_format.sql).
ALTER TABLE chain_head ADD COLUMN format integer;
