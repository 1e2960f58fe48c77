-- The queue learns: a real/bogus model trained on the project's ratings,
-- the rule that settles a candidate, and gold candidates whose truth is known.

ALTER TABLE projects
    -- Retrain after this many new ratings (0: only on demand).
    ADD COLUMN model_retrain_every integer NOT NULL DEFAULT 200
        CHECK (model_retrain_every BETWEEN 0 AND 1000000),
    -- A candidate is settled when one of real / not real leads the other by
    -- at least k verdicts (and has k of them); see consensus_state below.
    ADD COLUMN consensus_k smallint NOT NULL DEFAULT 2 CHECK (consensus_k BETWEEN 1 AND 20),
    -- Only reviewers marked as experts may walk the disputed queue.
    ADD COLUMN disputes_experts_only boolean NOT NULL DEFAULT false,
    -- The share of "next" draws that are gold candidates.
    ADD COLUMN gold_rate real NOT NULL DEFAULT 0 CHECK (gold_rate >= 0 AND gold_rate <= 0.5);

ALTER TABLE users ADD COLUMN expert boolean NOT NULL DEFAULT false;

-- open, settled_real, settled_not_real or disputed. Unsure verdicts count
-- for neither side. Immutable, so that filters can use it on every row.
CREATE FUNCTION consensus_state(n_real integer, n_not_real integer, k integer)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN n_real >= k AND n_real - n_not_real >= k THEN 'settled_real'
        WHEN n_not_real >= k AND n_not_real - n_real >= k THEN 'settled_not_real'
        WHEN n_real > 0 AND n_not_real > 0 THEN 'disputed'
        ELSE 'open'
    END
$$;

-- Every model trained, accepted or not, with what the model page shows.
CREATE TABLE models (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id      bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
    version         integer NOT NULL CHECK (version > 0),
    trained_at      timestamptz NOT NULL DEFAULT now(),
    -- The project's count of current ratings when training began.
    ratings_seen    bigint NOT NULL,
    n_train         integer NOT NULL,
    n_real          integer NOT NULL,
    auc             double precision NOT NULL,
    precision_at_95 double precision NOT NULL,
    -- Feature names and normalised gain importances, in step.
    features        jsonb NOT NULL,
    importances     jsonb NOT NULL,
    -- Platt scaling of the booster's log-odds, fitted out of fold.
    platt_a         double precision NOT NULL,
    platt_b         double precision NOT NULL,
    booster         text NOT NULL,
    accepted        boolean NOT NULL,
    -- Why it was not accepted, or what the comparison with the last one was.
    verdict_note    text NOT NULL DEFAULT '',
    -- How the scores moved from the model before (filled when scored).
    movement        jsonb,
    -- Reading the features and training (with the cross-validation), and
    -- scoring every candidate (accepted models only).
    seconds         double precision NOT NULL,
    score_seconds   double precision,
    UNIQUE (project_id, version)
);

-- The current model's calibrated P(real) of each scored candidate: one
-- partition per project (candidate_scores_<project id>), made anew by each
-- model (COPY into a fresh table, indexes built once, swapped in), so that
-- scoring a million candidates does not update three indexes and check a
-- key per row. No foreign keys for the same reason: every reader joins
-- candidates, so the score of a candidate removed since is never seen, and
-- the next model leaves it out; a removed project's partition is dropped
-- with it.
CREATE TABLE candidate_scores (
    candidate_id bigint NOT NULL,
    project_id   bigint NOT NULL,
    model_id     bigint NOT NULL,
    p_real       real NOT NULL CHECK (p_real >= 0 AND p_real <= 1),
    PRIMARY KEY (project_id, candidate_id)
) PARTITION BY LIST (project_id);
CREATE INDEX candidate_scores_candidate_idx ON candidate_scores (candidate_id);
CREATE INDEX candidate_scores_likely_idx ON candidate_scores (project_id, p_real DESC, candidate_id);
CREATE INDEX candidate_scores_uncertain_idx
    ON candidate_scores (project_id, abs(p_real - 0.5), candidate_id);

-- Candidates whose true verdict is known (injected fakes, known pulsars).
-- Kept apart from candidates so that nothing a reviewer reads selects it.
CREATE TABLE gold_candidates (
    candidate_id bigint PRIMARY KEY REFERENCES candidates ON DELETE CASCADE,
    project_id   bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
    verdict      verdict NOT NULL CHECK (verdict <> 'unsure'),
    source       text NOT NULL CHECK (source IN ('admin', 'upload')),
    marked_by    bigint REFERENCES users ON DELETE SET NULL,
    marked_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gold_candidates_project_idx ON gold_candidates (project_id, candidate_id);
