-- Callbacks to the originating system when an exchange ends (delivered, rejected, failed).
-- notify_state is the end state still to be announced; NULL when nothing is pending.
ALTER TABLE exchanges ADD COLUMN notify_state TEXT;
ALTER TABLE exchanges ADD COLUMN notify_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE exchanges ADD COLUMN notify_at REAL;
CREATE INDEX exchanges_notify ON exchanges (notify_at) WHERE notify_state IS NOT NULL;
