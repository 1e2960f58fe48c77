-- Ratings: each reviewer's current judgement of a candidate, its history,
-- and each reviewer's queue.

CREATE TYPE verdict AS ENUM ('real', 'not_real', 'unsure');

-- One current rating per reviewer and candidate: a change replaces it and
-- moves the old one to rating_history.
CREATE TABLE ratings (
    candidate_id    bigint NOT NULL REFERENCES candidates ON DELETE CASCADE,
    user_id         bigint NOT NULL REFERENCES users,
    verdict         verdict NOT NULL,
    score           smallint CHECK (score BETWEEN 1 AND 5),
    notes           text NOT NULL DEFAULT '' CHECK (length(notes) <= 10000),
    -- The form's one-time key: a resubmitted form is recognised, not counted twice.
    idempotency_key text CHECK (length(idempotency_key) <= 64),
    rated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, candidate_id)
);
CREATE INDEX ratings_candidate_idx ON ratings (candidate_id);
CREATE INDEX ratings_user_time_idx ON ratings (user_id, rated_at DESC);

CREATE TABLE rating_tags (
    user_id      bigint NOT NULL,
    candidate_id bigint NOT NULL,
    tag_id       bigint NOT NULL REFERENCES tags ON DELETE CASCADE,
    PRIMARY KEY (user_id, candidate_id, tag_id),
    FOREIGN KEY (user_id, candidate_id) REFERENCES ratings ON DELETE CASCADE
);
CREATE INDEX rating_tags_tag_idx ON rating_tags (tag_id);
CREATE INDEX rating_tags_candidate_idx ON rating_tags (candidate_id, tag_id);

-- Earlier ratings, with their tags as they were named then.
CREATE TABLE rating_history (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    candidate_id bigint NOT NULL REFERENCES candidates ON DELETE CASCADE,
    user_id      bigint NOT NULL REFERENCES users,
    verdict      verdict NOT NULL,
    score        smallint,
    notes        text NOT NULL,
    tag_ids      bigint[] NOT NULL DEFAULT '{}',
    tag_names    text[] NOT NULL DEFAULT '{}',
    rated_at     timestamptz NOT NULL,
    replaced_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rating_history_candidate_idx ON rating_history (candidate_id, replaced_at);
CREATE INDEX rating_history_user_idx ON rating_history (user_id, candidate_id, replaced_at DESC);

-- Kept in step with ratings by the code that writes them (same transaction),
-- so "fewest ratings first" and "not rated by anyone" need no aggregate.
ALTER TABLE candidates ADD COLUMN rating_count integer NOT NULL DEFAULT 0 CHECK (rating_count >= 0);
-- A fixed random key per candidate: the shuffled queue order walks it from a
-- per-reviewer starting point.
ALTER TABLE candidates ADD COLUMN shuffle_key integer NOT NULL DEFAULT floor(random() * 2147483647)::integer;
CREATE INDEX candidates_name_idx ON candidates (name, id);
CREATE INDEX candidates_count_idx ON candidates (project_id, rating_count, id);
CREATE INDEX candidates_shuffle_idx ON candidates (shuffle_key, id);
CREATE INDEX candidates_observation_name_idx ON candidates (observation_id, name, id);

-- Each reviewer's queue: what "next" draws from. Kept in the database so it
-- survives logout and follows the reviewer between browsers.
CREATE TABLE reviewer_queues (
    user_id      bigint PRIMARY KEY REFERENCES users,
    view         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(view) = 'object'),
    shuffle_seed integer NOT NULL DEFAULT floor(random() * 2147483647)::integer,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Animated GIFs are also stored as a strip of frames (a derived PNG), so the
-- page can pause and scrub them; these say how to cut the strip.
ALTER TABLE files ADD COLUMN frames integer CHECK (frames > 0);
ALTER TABLE files ADD COLUMN frame_ms integer CHECK (frame_ms > 0);
ALTER TABLE files ADD COLUMN width integer CHECK (width > 0);
ALTER TABLE files ADD COLUMN height integer CHECK (height > 0);
