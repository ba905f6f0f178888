-- 'unconfirmed' is an ended state too (a partner reply no reply rule recognises): archive walks
-- ended exchanges by this partial index, whose state list must match replay.rules.ENDED.
DROP INDEX exchanges_closed;
CREATE INDEX exchanges_closed ON exchanges (updated_at)
    WHERE state IN ('delivered', 'failed', 'rejected', 'unconfirmed');
