-- Groups of candidates: those of a project within the project's radius of
-- each other (friends of friends, across beams, observations and epochs),
-- and ratings given to many candidates at once.

ALTER TABLE projects
    ADD COLUMN group_radius_arcsec double precision NOT NULL DEFAULT 10
        CHECK (group_radius_arcsec > 0 AND group_radius_arcsec <= 3600);

-- The smallest candidate id of the candidate's group, so a group needs no
-- row of its own and a merge only relabels the members of the larger ids.
-- Set by the upload that inserts the candidate, in its transaction;
-- existing candidates start alone until `vetter groups recompute` runs.
ALTER TABLE candidates ADD COLUMN group_id bigint;
UPDATE candidates SET group_id = id;
CREATE INDEX candidates_group_idx ON candidates (project_id, group_id, id);

-- Ratings given in one go: a whole group, or every candidate a table filter
-- selects. The current ratings and the history rows they replaced carry
-- the batch, so an undo can put each candidate back as it was.
CREATE TABLE rating_batches (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users,
    project_id  bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
    verdict     verdict NOT NULL,
    tag_ids     bigint[] NOT NULL DEFAULT '{}',
    -- What was rated: "group" or "filter", and the filter's query or the group.
    scope       text NOT NULL CHECK (scope IN ('group', 'filter')),
    selection   text NOT NULL DEFAULT '' CHECK (length(selection) <= 10000),
    count       integer NOT NULL CHECK (count >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    undone_at   timestamptz
);
CREATE INDEX rating_batches_user_idx ON rating_batches (user_id, created_at DESC);

ALTER TABLE ratings ADD COLUMN batch_id bigint REFERENCES rating_batches ON DELETE SET NULL;
ALTER TABLE rating_history ADD COLUMN batch_id bigint REFERENCES rating_batches ON DELETE SET NULL;
CREATE INDEX ratings_batch_idx ON ratings (batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX rating_history_batch_idx ON rating_history (batch_id) WHERE batch_id IS NOT NULL;
