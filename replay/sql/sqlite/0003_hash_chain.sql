-- Every event is chained to the one before it: see replay/chain.py.
ALTER TABLE events ADD COLUMN hash BLOB;
