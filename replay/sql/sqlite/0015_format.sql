-- Which generation of the stored format the journal's newest writer wrote (replay/formats.py):
-- a release that reads fewer generations refuses the journal at open. NULL: none marked yet,
-- the first generation; a release marks it when it first opens the journal for writing.
ALTER TABLE chain_head ADD COLUMN format INTEGER;
