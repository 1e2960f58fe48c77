-- What each reviewer was shown, newest first, for "previous": at most the
-- latest 200 (the statement that adds one drops the oldest). It was kept in
-- the session, which made every page view rewrite the whole session row.
-- One row per reviewer, found by its key: the plan cannot change with the
-- table's size. Unlogged: a view costs no WAL and its commit no disk flush,
-- and after a crash the table starts empty, which loses only the way back.
--
-- No foreign keys: each would cost every page view a lookup. Walking back
-- skips candidates that were removed since.
CREATE UNLOGGED TABLE reviewer_trails (
    user_id bigint PRIMARY KEY,
    shown bigint[] NOT NULL
);
