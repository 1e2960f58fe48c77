-- What each reviewer was shown, newest last, for "previous". It was kept in
-- the session, which made every page view rewrite the whole session row.
-- Unlogged: a view costs no WAL and its commit no disk flush, and after a
-- crash the table starts empty, which loses only the way back.
--
-- No foreign keys: each would cost every page view a lookup. Walking back
-- skips candidates that were removed since, and the hourly clean-up keeps
-- each reviewer's latest entries only.
CREATE UNLOGGED TABLE reviewer_trail (
    user_id bigint NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    candidate_id bigint NOT NULL,
    PRIMARY KEY (user_id, seq)
);

-- The latest time a reviewer was shown a candidate, found without walking
-- the trail.
CREATE INDEX reviewer_trail_candidate ON reviewer_trail (user_id, candidate_id, seq);
