-- The blind rule: a reviewer sees others' ratings of a candidate only after
-- rating it. A project can open its ratings to everyone, or exempt its
-- administrators; both off keeps every project blind, as before.
ALTER TABLE projects ADD COLUMN open_review boolean NOT NULL DEFAULT false;
ALTER TABLE projects ADD COLUMN admins_see_all boolean NOT NULL DEFAULT false;

-- The ratings summary of a whole project, kept up to date by triggers on
-- every write (the app's, the upload API's, a bulk load's), so /ratings of
-- a million candidates reads a few hundred rows instead of every rating.
-- Only viewers who may see every rating of the project use these; a blind
-- reviewer's figures come from the ratings of the candidates they rated.

-- Per rated candidate, its current ratings by verdict.
CREATE TABLE candidate_tallies (
    candidate_id bigint PRIMARY KEY REFERENCES candidates ON DELETE CASCADE,
    project_id   bigint NOT NULL,
    n_real       integer NOT NULL,
    n_not_real   integer NOT NULL,
    n_unsure     integer NOT NULL
);
-- The candidates the reviewers disagree on: a small index that the walk
-- of the names in order probes to list the first of them.
CREATE INDEX candidate_tallies_disagree_idx ON candidate_tallies (candidate_id)
    WHERE (n_real > 0)::int + (n_not_real > 0)::int + (n_unsure > 0)::int > 1;

-- Per project, how many rated candidates have each combination of counts:
-- totals and agreement (Fleiss) follow from these. Unrated candidates are
-- not kept here: an upload would hold their row for its whole transaction,
-- and every first rating would wait for it.
CREATE TABLE project_rating_shapes (
    project_id bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
    n_real     integer NOT NULL,
    n_not_real integer NOT NULL,
    n_unsure   integer NOT NULL,
    candidates bigint NOT NULL,
    PRIMARY KEY (project_id, n_real, n_not_real, n_unsure)
);

CREATE TABLE project_reviewer_verdicts (
    project_id bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
    user_id    bigint NOT NULL REFERENCES users,
    verdict    verdict NOT NULL,
    ratings    bigint NOT NULL,
    PRIMARY KEY (project_id, user_id, verdict)
);

-- Per pair of reviewers (lower id first): candidates both rated, and on how
-- many they gave the same verdict.
CREATE TABLE project_reviewer_pairs (
    project_id bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
    user_a     bigint NOT NULL REFERENCES users,
    user_b     bigint NOT NULL REFERENCES users,
    both_rated bigint NOT NULL,
    agreed     bigint NOT NULL,
    PRIMARY KEY (project_id, user_a, user_b),
    CHECK (user_a < user_b)
);

-- Per candidate and tag: how many of its current ratings carry the tag
-- (so the distinct candidates per tag stay right whatever the order of
-- the rows a statement writes).
CREATE TABLE candidate_tag_tallies (
    candidate_id bigint NOT NULL REFERENCES candidates ON DELETE CASCADE,
    tag_id       bigint NOT NULL REFERENCES tags ON DELETE CASCADE,
    ratings      integer NOT NULL,
    PRIMARY KEY (candidate_id, tag_id)
);

-- Per tag: current ratings carrying it, and distinct candidates.
CREATE TABLE tag_rating_counts (
    tag_id     bigint PRIMARY KEY REFERENCES tags ON DELETE CASCADE,
    ratings    bigint NOT NULL,
    candidates bigint NOT NULL
);

-- Every change to the summaries takes this transaction lock first (the
-- advisory-lock class "rsum"), so writers queue for the few shared rows
-- (a project's shapes, a tag's counts) instead of deadlocking over them
-- in different orders. Each holds it for a millisecond or so.
CREATE FUNCTION rating_summaries_lock() RETURNS void
LANGUAGE sql AS $$ SELECT pg_advisory_xact_lock(1920169325, 0) $$;

CREATE FUNCTION rating_shape_add(p bigint, a integer, b integer, c integer, d bigint) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO project_rating_shapes AS s (project_id, n_real, n_not_real, n_unsure, candidates)
    SELECT p, a, b, c, d WHERE a + b + c > 0
    ON CONFLICT (project_id, n_real, n_not_real, n_unsure)
    DO UPDATE SET candidates = s.candidates + EXCLUDED.candidates
$$;

-- One rating in or out of every summary of its candidate's project. Row
-- triggers see the table as the whole statement left it, so a statement
-- must not remove or change several ratings of one candidate at once (the
-- app never does; a bulk job runs refresh_rating_summaries() afterwards).
CREATE FUNCTION rating_summary_apply(cid bigint, uid bigint, v verdict, sign integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    p bigint;
    a integer := 0;
    b integer := 0;
    c integer := 0;
    o record;
BEGIN
    SELECT c.project_id INTO p FROM candidates c JOIN projects pr ON pr.id = c.project_id WHERE c.id = cid;
    -- A candidate or project on its way out: its summaries go with it.
    IF p IS NULL THEN
        RETURN;
    END IF;
    PERFORM rating_summaries_lock();
    SELECT n_real, n_not_real, n_unsure INTO a, b, c
    FROM candidate_tallies WHERE candidate_id = cid FOR UPDATE;
    IF NOT FOUND THEN
        a := 0;
        b := 0;
        c := 0;
    END IF;
    PERFORM rating_shape_add(p, a, b, c, -1);
    a := a + CASE WHEN v = 'real' THEN sign ELSE 0 END;
    b := b + CASE WHEN v = 'not_real' THEN sign ELSE 0 END;
    c := c + CASE WHEN v = 'unsure' THEN sign ELSE 0 END;
    PERFORM rating_shape_add(p, a, b, c, 1);
    IF a + b + c = 0 THEN
        DELETE FROM candidate_tallies WHERE candidate_id = cid;
    ELSE
        INSERT INTO candidate_tallies (candidate_id, project_id, n_real, n_not_real, n_unsure)
        VALUES (cid, p, a, b, c)
        ON CONFLICT (candidate_id) DO UPDATE
        SET n_real = EXCLUDED.n_real, n_not_real = EXCLUDED.n_not_real, n_unsure = EXCLUDED.n_unsure;
    END IF;
    INSERT INTO project_reviewer_verdicts AS r (project_id, user_id, verdict, ratings)
    VALUES (p, uid, v, sign)
    ON CONFLICT (project_id, user_id, verdict) DO UPDATE SET ratings = r.ratings + EXCLUDED.ratings;
    FOR o IN SELECT user_id, verdict FROM ratings WHERE candidate_id = cid AND user_id <> uid LOOP
        INSERT INTO project_reviewer_pairs AS x (project_id, user_a, user_b, both_rated, agreed)
        VALUES (p, least(uid, o.user_id), greatest(uid, o.user_id), sign,
                CASE WHEN o.verdict = v THEN sign ELSE 0 END)
        ON CONFLICT (project_id, user_a, user_b) DO UPDATE
        SET both_rated = x.both_rated + EXCLUDED.both_rated, agreed = x.agreed + EXCLUDED.agreed;
    END LOOP;
END
$$;

CREATE FUNCTION ratings_summary_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        PERFORM rating_summary_apply(OLD.candidate_id, OLD.user_id, OLD.verdict, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM rating_summary_apply(NEW.candidate_id, NEW.user_id, NEW.verdict, 1);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER ratings_summary AFTER INSERT OR DELETE OR UPDATE OF verdict, candidate_id, user_id ON ratings
    FOR EACH ROW EXECUTE FUNCTION ratings_summary_trigger();

CREATE FUNCTION rating_tags_summary_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    PERFORM rating_summaries_lock();
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE candidate_tag_tallies SET ratings = ratings - 1
        WHERE candidate_id = OLD.candidate_id AND tag_id = OLD.tag_id
        RETURNING ratings INTO n;
        IF n = 0 THEN
            DELETE FROM candidate_tag_tallies WHERE candidate_id = OLD.candidate_id AND tag_id = OLD.tag_id;
        END IF;
        UPDATE tag_rating_counts
        SET ratings = ratings - 1, candidates = candidates - CASE WHEN n = 0 THEN 1 ELSE 0 END
        WHERE tag_id = OLD.tag_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO candidate_tag_tallies AS t (candidate_id, tag_id, ratings)
        VALUES (NEW.candidate_id, NEW.tag_id, 1)
        ON CONFLICT (candidate_id, tag_id) DO UPDATE SET ratings = t.ratings + 1
        RETURNING ratings INTO n;
        INSERT INTO tag_rating_counts AS t (tag_id, ratings, candidates)
        VALUES (NEW.tag_id, 1, CASE WHEN n = 1 THEN 1 ELSE 0 END)
        ON CONFLICT (tag_id) DO UPDATE
        SET ratings = t.ratings + 1, candidates = t.candidates + EXCLUDED.candidates;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER rating_tags_summary AFTER INSERT OR DELETE OR UPDATE ON rating_tags
    FOR EACH ROW EXECUTE FUNCTION rating_tags_summary_trigger();

-- A candidate that goes takes its ratings out of the summaries first
-- (while its project is still known).
CREATE FUNCTION candidates_summary_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    u record;
BEGIN
    -- A whole project going: its summaries cascade away.
    IF NOT EXISTS (SELECT 1 FROM projects WHERE id = OLD.project_id) THEN
        RETURN OLD;
    END IF;
    -- One at a time: see rating_summary_apply.
    FOR u IN SELECT user_id FROM ratings WHERE candidate_id = OLD.id LOOP
        DELETE FROM ratings WHERE candidate_id = OLD.id AND user_id = u.user_id;
    END LOOP;
    RETURN OLD;
END
$$;

CREATE TRIGGER candidates_summary_delete BEFORE DELETE ON candidates
    FOR EACH ROW EXECUTE FUNCTION candidates_summary_trigger();

-- Every summary made again from the rows: after a bulk load that ran
-- without triggers, and once here for the ratings that exist.
CREATE FUNCTION refresh_rating_summaries() RETURNS void
LANGUAGE sql AS $$
    TRUNCATE candidate_tallies, project_rating_shapes, project_reviewer_verdicts,
             project_reviewer_pairs, candidate_tag_tallies, tag_rating_counts;
    INSERT INTO candidate_tallies (candidate_id, project_id, n_real, n_not_real, n_unsure)
    SELECT r.candidate_id, c.project_id, count(*) FILTER (WHERE r.verdict = 'real'),
           count(*) FILTER (WHERE r.verdict = 'not_real'), count(*) FILTER (WHERE r.verdict = 'unsure')
    FROM ratings r JOIN candidates c ON c.id = r.candidate_id
    GROUP BY r.candidate_id, c.project_id;
    INSERT INTO project_rating_shapes (project_id, n_real, n_not_real, n_unsure, candidates)
    SELECT project_id, n_real, n_not_real, n_unsure, count(*) FROM candidate_tallies
    GROUP BY project_id, n_real, n_not_real, n_unsure;
    INSERT INTO project_reviewer_verdicts (project_id, user_id, verdict, ratings)
    SELECT c.project_id, r.user_id, r.verdict, count(*)
    FROM ratings r JOIN candidates c ON c.id = r.candidate_id
    GROUP BY c.project_id, r.user_id, r.verdict;
    INSERT INTO project_reviewer_pairs (project_id, user_a, user_b, both_rated, agreed)
    SELECT c.project_id, a.user_id, b.user_id, count(*), count(*) FILTER (WHERE a.verdict = b.verdict)
    FROM ratings a JOIN ratings b ON b.candidate_id = a.candidate_id AND b.user_id > a.user_id
    JOIN candidates c ON c.id = a.candidate_id
    GROUP BY c.project_id, a.user_id, b.user_id;
    INSERT INTO candidate_tag_tallies (candidate_id, tag_id, ratings)
    SELECT candidate_id, tag_id, count(*) FROM rating_tags GROUP BY candidate_id, tag_id;
    INSERT INTO tag_rating_counts (tag_id, ratings, candidates)
    SELECT tag_id, sum(ratings), count(*) FROM candidate_tag_tallies GROUP BY tag_id;
$$;

SELECT refresh_rating_summaries();
