-- Saved views of the candidate table: a reviewer's named filters (the URL
-- query string of /candidates), one of which may be their default. The same
-- query strings limit the rating queue (reviewer_queues.view->>'filter').

CREATE TABLE saved_views (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    name       text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100 AND name !~ '[[:cntrl:]]'),
    query      text NOT NULL CHECK (length(query) <= 8000),
    is_default boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- Names are per reviewer and compared case-insensitively.
CREATE UNIQUE INDEX saved_views_user_name_key ON saved_views (user_id, lower(name));
-- At most one default per reviewer.
CREATE UNIQUE INDEX saved_views_one_default_key ON saved_views (user_id) WHERE is_default;
