-- The read API: what a token may do, a feed of rating changes that a
-- client can follow without ever missing one, and each observation's
-- progress kept as rows arrive.

-- ---------------------------------------------------------------------------
-- Token scopes. Every token so far could upload (if its user may) and read
-- nothing, and keeps exactly that. No defaults afterwards: whoever makes a
-- token says what it may do.
ALTER TABLE api_tokens
    ADD COLUMN scope_read boolean NOT NULL DEFAULT false,
    ADD COLUMN scope_upload boolean NOT NULL DEFAULT true,
    ADD CONSTRAINT api_tokens_some_scope CHECK (scope_read OR scope_upload);
ALTER TABLE api_tokens ALTER COLUMN scope_read DROP DEFAULT;
ALTER TABLE api_tokens ALTER COLUMN scope_upload DROP DEFAULT;

-- ---------------------------------------------------------------------------
-- Rating changes, for incremental sync (`GET /api/v1/ratings`).
--
-- One row per (transaction, candidate, reviewer) whose rating, tags or
-- history changed, with the writing transaction's id. A reader hands out
-- only rows whose xid is below the xmin of its own snapshot: every
-- transaction below it has ended, so no row can later appear before the
-- reader's cursor (a long transaction that wrote early and commits late
-- holds the feed back until it ends, rather than being skipped).
-- Rows are paged by (xid, id); ids within one transaction ascend.
-- No foreign keys: a change that deleted a candidate must still be told.
CREATE TABLE rating_changes (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    xid          xid8 NOT NULL DEFAULT pg_current_xact_id(),
    candidate_id bigint NOT NULL,
    user_id      bigint NOT NULL,
    -- The candidate's project when the change was written (NULL if the
    -- candidate was already going with its project).
    project_id   bigint,
    changed_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (xid, id),
    UNIQUE (xid, candidate_id, user_id)
);
CREATE INDEX rating_changes_time_idx ON rating_changes (changed_at);

CREATE FUNCTION note_rating_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cid bigint;
    uid bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        cid := OLD.candidate_id;
        uid := OLD.user_id;
    ELSE
        cid := NEW.candidate_id;
        uid := NEW.user_id;
    END IF;
    INSERT INTO rating_changes (candidate_id, user_id, project_id)
    VALUES (cid, uid, (SELECT project_id FROM candidates WHERE id = cid))
    ON CONFLICT (xid, candidate_id, user_id) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER ratings_note_change AFTER INSERT OR UPDATE OR DELETE ON ratings
    FOR EACH ROW EXECUTE FUNCTION note_rating_change();
-- A tag taken off every rating (a tag deleted or merged) changes those
-- ratings without touching their rows.
CREATE TRIGGER rating_tags_note_change AFTER INSERT OR UPDATE OR DELETE ON rating_tags
    FOR EACH ROW EXECUTE FUNCTION note_rating_change();

-- One change per current rating, in the order they were made: the feed
-- from its start then holds every rating. Here once, and after a bulk load
-- that ran without triggers.
CREATE FUNCTION note_every_rating() RETURNS void
LANGUAGE sql AS $$
    INSERT INTO rating_changes (candidate_id, user_id, project_id)
    SELECT r.candidate_id, r.user_id, c.project_id
    FROM ratings r JOIN candidates c ON c.id = r.candidate_id
    ORDER BY r.rated_at, r.candidate_id, r.user_id
    ON CONFLICT (xid, candidate_id, user_id) DO NOTHING;
$$;

SELECT note_every_rating();

-- ---------------------------------------------------------------------------
-- Each observation's progress: its candidates, how many anyone rated, and
-- how many the team has settled either way or disputes
-- (`consensus_state` of the candidate's tallies and its project's k).
-- Spread over a slot per backend, summed when read, as
-- project_candidate_counts is, so that two uploads into one observation do
-- not wait for each other's commit.
CREATE TABLE observation_progress (
    observation_id   bigint NOT NULL REFERENCES observations ON DELETE CASCADE,
    slot             smallint NOT NULL CHECK (slot BETWEEN 0 AND 7),
    candidates       bigint NOT NULL DEFAULT 0,
    rated            bigint NOT NULL DEFAULT 0,
    settled_real     bigint NOT NULL DEFAULT 0,
    settled_not_real bigint NOT NULL DEFAULT 0,
    disputed         bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (observation_id, slot)
);

-- Adds to an observation's figures (nothing for one on its way out).
CREATE FUNCTION observation_progress_add(o bigint, dc bigint, dr bigint, dsr bigint, dsn bigint, dd bigint)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO observation_progress AS p
        (observation_id, slot, candidates, rated, settled_real, settled_not_real, disputed)
    SELECT o, pg_backend_pid() % 8, dc, dr, dsr, dsn, dd
    WHERE EXISTS (SELECT 1 FROM observations x WHERE x.id = o)
    ON CONFLICT (observation_id, slot) DO UPDATE
    SET candidates = p.candidates + excluded.candidates, rated = p.rated + excluded.rated,
        settled_real = p.settled_real + excluded.settled_real,
        settled_not_real = p.settled_not_real + excluded.settled_not_real,
        disputed = p.disputed + excluded.disputed;
$$;

CREATE FUNCTION progress_arrived_candidates() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM observation_progress_add(a.observation_id, count(*), count(*) FILTER (WHERE a.rating_count > 0), 0, 0, 0)
    FROM arrived a GROUP BY a.observation_id;
    RETURN NULL;
END
$$;

-- A candidate's ratings leave before it does (candidates_summary_delete),
-- taking its consensus with them; its count and "rated" go here.
CREATE FUNCTION progress_removed_candidates() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM observation_progress_add(g.observation_id, -count(*), -count(*) FILTER (WHERE g.rating_count > 0), 0, 0, 0)
    FROM gone g GROUP BY g.observation_id;
    RETURN NULL;
END
$$;

CREATE FUNCTION progress_rated_candidate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM observation_progress_add(NEW.observation_id, 0,
                                     CASE WHEN NEW.rating_count > 0 THEN 1 ELSE -1 END, 0, 0, 0);
    RETURN NULL;
END
$$;

CREATE TRIGGER candidates_progress_insert
    AFTER INSERT ON candidates
    REFERENCING NEW TABLE AS arrived
    FOR EACH STATEMENT EXECUTE FUNCTION progress_arrived_candidates();
CREATE TRIGGER candidates_progress_delete
    AFTER DELETE ON candidates
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION progress_removed_candidates();
CREATE TRIGGER candidates_progress_rated
    AFTER UPDATE OF rating_count ON candidates
    FOR EACH ROW WHEN ((OLD.rating_count > 0) IS DISTINCT FROM (NEW.rating_count > 0))
    EXECUTE FUNCTION progress_rated_candidate();

-- A candidate's tallies moved: its consensus may have.
CREATE FUNCTION progress_tallies() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cid bigint;
    o bigint;
    k integer;
    was text := 'open';
    now_ text := 'open';
BEGIN
    IF TG_OP = 'DELETE' THEN
        cid := OLD.candidate_id;
    ELSE
        cid := NEW.candidate_id;
    END IF;
    SELECT c.observation_id, p.consensus_k INTO o, k
    FROM candidates c JOIN projects p ON p.id = c.project_id WHERE c.id = cid;
    IF o IS NULL THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        was := consensus_state(OLD.n_real, OLD.n_not_real, k);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        now_ := consensus_state(NEW.n_real, NEW.n_not_real, k);
    END IF;
    IF was <> now_ THEN
        PERFORM observation_progress_add(o, 0, 0,
            (now_ = 'settled_real')::int - (was = 'settled_real')::int,
            (now_ = 'settled_not_real')::int - (was = 'settled_not_real')::int,
            (now_ = 'disputed')::int - (was = 'disputed')::int);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER candidate_tallies_progress AFTER INSERT OR UPDATE OR DELETE ON candidate_tallies
    FOR EACH ROW EXECUTE FUNCTION progress_tallies();

-- The consensus of one project's observations (all, for NULL) made again
-- from its tallies: after its k changed, or after a bulk load.
CREATE FUNCTION refresh_consensus_progress(project bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE observation_progress g SET settled_real = 0, settled_not_real = 0, disputed = 0
    FROM observations o WHERE o.id = g.observation_id AND (project IS NULL OR o.project_id = project);
    PERFORM observation_progress_add(s.observation_id, 0, 0,
                                     count(*) FILTER (WHERE s.state = 'settled_real'),
                                     count(*) FILTER (WHERE s.state = 'settled_not_real'),
                                     count(*) FILTER (WHERE s.state = 'disputed'))
    FROM (SELECT c.observation_id, consensus_state(t.n_real, t.n_not_real, p.consensus_k) AS state
          FROM candidate_tallies t JOIN candidates c ON c.id = t.candidate_id
          JOIN projects p ON p.id = c.project_id
          WHERE project IS NULL OR t.project_id = project) s
    GROUP BY s.observation_id;
END
$$;

CREATE FUNCTION progress_consensus_rule() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM refresh_consensus_progress(NEW.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER projects_progress_rule
    AFTER UPDATE OF consensus_k ON projects
    FOR EACH ROW WHEN (OLD.consensus_k IS DISTINCT FROM NEW.consensus_k)
    EXECUTE FUNCTION progress_consensus_rule();

-- Every observation's figures made again from the rows: once here, and
-- after a bulk load that ran without triggers.
CREATE FUNCTION refresh_observation_progress() RETURNS void
LANGUAGE sql AS $$
    TRUNCATE observation_progress;
    INSERT INTO observation_progress (observation_id, slot, candidates, rated)
    SELECT o.id, 0, count(c.id), count(c.id) FILTER (WHERE c.rating_count > 0)
    FROM observations o LEFT JOIN candidates c ON c.observation_id = o.id
    GROUP BY o.id;
    SELECT refresh_consensus_progress(NULL);
$$;

SELECT refresh_observation_progress();
