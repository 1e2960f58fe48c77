-- The ratings summaries of whole projects and of each blind viewer
-- (20261206000001_blind_review, 20261207000003_viewer_summaries) were
-- written by the rating's own statement, under one lock shared by every
-- rating of every project: a candidate's eighth rating spent about 2.5 of
-- its 3.5 ms there, and reviewers rating the same candidates queued
-- behind each other for tens of milliseconds.
--
-- A rating now writes only what belongs to its candidate (its tallies,
-- which the queue's consensus reads, and its tags' tallies) and notes the
-- candidate as pending. flush_rating_summaries() brings the shared
-- summaries up to date with the pending candidates: it compares what each
-- candidate contributed when last counted (candidate_summary_states) with
-- what its ratings contribute now, and writes the difference, all pending
-- candidates at once, in key order, one flush at a time. The app flushes
-- every couple of seconds and before every read of these summaries, so a
-- page never shows a figure that misses a committed rating.
--
-- Counting a candidate is "make it match its rows as they stand", so
-- counting it twice, or after further changes, is harmless: a rating
-- that commits while a flush runs is counted by that flush or the next.

-- Candidates whose ratings or tags changed since the summaries counted
-- them. Appended to without a key, so raters never wait on each other here.
CREATE TABLE rating_summary_pending (
    candidate_id bigint NOT NULL
);

-- What each rated candidate contributes to the summaries, as last counted.
-- No key to the candidate: a removed candidate's state stays until a flush
-- has taken its contribution out.
CREATE TABLE candidate_summary_states (
    candidate_id bigint PRIMARY KEY,
    project_id   bigint NOT NULL,
    users        bigint[] NOT NULL,
    verdicts     verdict[] NOT NULL,
    -- One entry per tag of each of its ratings.
    tag_ids      bigint[] NOT NULL
);

CREATE TYPE rating_summary_part AS (
    candidate_id bigint,
    project_id   bigint,
    sign         integer,
    users        bigint[],
    verdicts     verdict[],
    tag_ids      bigint[],
    n_real       integer,
    n_not_real   integer,
    n_unsure     integer
);

-- A rating in or out: its candidate's tallies move now (row by row, so
-- only raters of the same candidate wait for each other), the rest at the
-- next flush.
CREATE FUNCTION candidate_tally_add(cid bigint, da integer, db integer, dc integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    p bigint;
    total integer;
BEGIN
    INSERT INTO rating_summary_pending (candidate_id) VALUES (cid);
    IF da = 0 AND db = 0 AND dc = 0 THEN
        RETURN;
    END IF;
    SELECT c.project_id INTO p FROM candidates c JOIN projects pr ON pr.id = c.project_id WHERE c.id = cid;
    -- A candidate or project on its way out: its tallies go with it.
    IF p IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO candidate_tallies AS t (candidate_id, project_id, n_real, n_not_real, n_unsure)
    VALUES (cid, p, da, db, dc)
    ON CONFLICT (candidate_id) DO UPDATE
    SET n_real = t.n_real + EXCLUDED.n_real, n_not_real = t.n_not_real + EXCLUDED.n_not_real,
        n_unsure = t.n_unsure + EXCLUDED.n_unsure
    RETURNING n_real + n_not_real + n_unsure INTO total;
    IF total = 0 THEN
        DELETE FROM candidate_tallies WHERE candidate_id = cid;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION ratings_summary_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.candidate_id = NEW.candidate_id THEN
        -- One change of verdict: one write of the tallies.
        PERFORM candidate_tally_add(NEW.candidate_id,
                                    (NEW.verdict = 'real')::int - (OLD.verdict = 'real')::int,
                                    (NEW.verdict = 'not_real')::int - (OLD.verdict = 'not_real')::int,
                                    (NEW.verdict = 'unsure')::int - (OLD.verdict = 'unsure')::int);
        RETURN NULL;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        PERFORM candidate_tally_add(OLD.candidate_id, -(OLD.verdict = 'real')::int,
                                    -(OLD.verdict = 'not_real')::int, -(OLD.verdict = 'unsure')::int);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM candidate_tally_add(NEW.candidate_id, (NEW.verdict = 'real')::int,
                                    (NEW.verdict = 'not_real')::int, (NEW.verdict = 'unsure')::int);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION rating_tags_summary_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE candidate_tag_tallies SET ratings = ratings - 1
        WHERE candidate_id = OLD.candidate_id AND tag_id = OLD.tag_id
        RETURNING ratings INTO n;
        IF n = 0 THEN
            DELETE FROM candidate_tag_tallies WHERE candidate_id = OLD.candidate_id AND tag_id = OLD.tag_id;
        END IF;
        INSERT INTO rating_summary_pending (candidate_id) VALUES (OLD.candidate_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO candidate_tag_tallies AS t (candidate_id, tag_id, ratings)
        VALUES (NEW.candidate_id, NEW.tag_id, 1)
        ON CONFLICT (candidate_id, tag_id) DO UPDATE SET ratings = t.ratings + 1;
        INSERT INTO rating_summary_pending (candidate_id) VALUES (NEW.candidate_id);
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER rating_tags_viewer_summary ON rating_tags;
DROP FUNCTION rating_tags_viewer_trigger();
DROP FUNCTION rating_summary_apply(bigint, bigint, verdict, integer);
DROP FUNCTION project_rating_summary_apply(bigint, bigint, verdict, integer);
DROP FUNCTION viewer_rating_apply(bigint, bigint, bigint, verdict, integer);
DROP FUNCTION viewer_others_apply(bigint, bigint, bigint[], verdict[], bigint, verdict, integer);
DROP FUNCTION viewer_summary_apply(bigint, bigint, bigint[], bigint[], verdict[], integer);
DROP FUNCTION viewer_tags_apply(bigint, bigint, integer);
DROP FUNCTION rating_shape_add(bigint, integer, integer, integer, bigint);

-- The pending candidates, at most `batch` of them, counted into every
-- shared summary; returns how many it counted (call again while that is
-- `batch`: the arrays below hold a batch in memory).
CREATE FUNCTION flush_rating_summaries(batch integer DEFAULT 20000) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    s rating_summary_part[];
BEGIN
    -- The common case on a read: nothing to do, and no lock to wait for.
    IF NOT EXISTS (SELECT 1 FROM rating_summary_pending) THEN
        RETURN 0;
    END IF;
    PERFORM rating_summaries_lock();
    -- A row a rating adds meanwhile for a candidate of the batch may stay:
    -- the next flush counts that candidate again, which changes nothing.
    WITH chosen AS (SELECT DISTINCT candidate_id FROM rating_summary_pending LIMIT batch),
         taken AS (DELETE FROM rating_summary_pending p USING chosen c
                   WHERE p.candidate_id = c.candidate_id RETURNING p.candidate_id)
    SELECT coalesce(array_agg(DISTINCT candidate_id), '{}') INTO ids FROM taken;
    IF cardinality(ids) = 0 THEN
        RETURN 0;
    END IF;
    -- Each candidate's contribution as last counted (out) and as its rows
    -- stand now (in), read in one statement so that every summary below
    -- and the states agree on what "now" is.
    SELECT coalesce(array_agg(ROW(x.candidate_id, x.project_id, x.sign, x.users, x.verdicts, x.tag_ids,
                                  (SELECT count(*) FILTER (WHERE v = 'real') FROM unnest(x.verdicts) v),
                                  (SELECT count(*) FILTER (WHERE v = 'not_real') FROM unnest(x.verdicts) v),
                                  (SELECT count(*) FILTER (WHERE v = 'unsure') FROM unnest(x.verdicts) v)
                              )::rating_summary_part), '{}')
    INTO s
    FROM (
        -- A removed project took its summaries with it: nothing to take out.
        SELECT o.candidate_id, o.project_id, -1 AS sign, o.users, o.verdicts, o.tag_ids
        FROM candidate_summary_states o
        WHERE o.candidate_id = ANY (ids) AND EXISTS (SELECT 1 FROM projects p WHERE p.id = o.project_id)
        UNION ALL
        SELECT c.id, c.project_id, 1, r.users, r.verdicts, coalesce(t.tag_ids, '{}')
        FROM candidates c
        JOIN LATERAL (SELECT array_agg(user_id ORDER BY user_id) AS users,
                             array_agg(verdict ORDER BY user_id) AS verdicts
                      FROM ratings WHERE candidate_id = c.id) r ON r.users IS NOT NULL
        LEFT JOIN LATERAL (SELECT array_agg(tag_id ORDER BY tag_id) AS tag_ids
                           FROM rating_tags WHERE candidate_id = c.id) t ON true
        WHERE c.id = ANY (ids)
    ) x;

    DELETE FROM candidate_summary_states WHERE candidate_id = ANY (ids);
    INSERT INTO candidate_summary_states (candidate_id, project_id, users, verdicts, tag_ids)
    SELECT w.candidate_id, w.project_id, w.users, w.verdicts, w.tag_ids FROM unnest(s) w WHERE w.sign = 1;

    -- Each summary gets the sum of the differences per key, in key order.
    INSERT INTO project_rating_shapes AS t (project_id, n_real, n_not_real, n_unsure, candidates)
    SELECT w.project_id, w.n_real, w.n_not_real, w.n_unsure, sum(w.sign)
    FROM unnest(s) w
    GROUP BY 1, 2, 3, 4 HAVING sum(w.sign) <> 0 ORDER BY 1, 2, 3, 4
    ON CONFLICT (project_id, n_real, n_not_real, n_unsure)
    DO UPDATE SET candidates = t.candidates + EXCLUDED.candidates;

    INSERT INTO project_reviewer_verdicts AS t (project_id, user_id, verdict, ratings)
    SELECT w.project_id, r.u, r.v, sum(w.sign)
    FROM unnest(s) w CROSS JOIN LATERAL unnest(w.users, w.verdicts) r(u, v)
    GROUP BY 1, 2, 3 HAVING sum(w.sign) <> 0 ORDER BY 1, 2, 3
    ON CONFLICT (project_id, user_id, verdict) DO UPDATE SET ratings = t.ratings + EXCLUDED.ratings;

    INSERT INTO project_reviewer_pairs AS t (project_id, user_a, user_b, both_rated, agreed)
    SELECT w.project_id, a.u, b.u, sum(w.sign), sum(w.sign * (a.v = b.v)::int)
    FROM unnest(s) w CROSS JOIN LATERAL unnest(w.users, w.verdicts) a(u, v)
    CROSS JOIN LATERAL unnest(w.users, w.verdicts) b(u, v)
    WHERE a.u < b.u
    GROUP BY 1, 2, 3 HAVING sum(w.sign) <> 0 OR sum(w.sign * (a.v = b.v)::int) <> 0 ORDER BY 1, 2, 3
    ON CONFLICT (project_id, user_a, user_b)
    DO UPDATE SET both_rated = t.both_rated + EXCLUDED.both_rated, agreed = t.agreed + EXCLUDED.agreed;

    -- A removed tag took its counts with it.
    INSERT INTO tag_rating_counts AS t (tag_id, ratings, candidates)
    SELECT g.tag_id, sum(w.sign * g.n), sum(w.sign)
    FROM unnest(s) w
    CROSS JOIN LATERAL (SELECT x AS tag_id, count(*) AS n FROM unnest(w.tag_ids) x GROUP BY x) g
    WHERE EXISTS (SELECT 1 FROM tags tg WHERE tg.id = g.tag_id)
    GROUP BY 1 HAVING sum(w.sign * g.n) <> 0 OR sum(w.sign) <> 0 ORDER BY 1
    ON CONFLICT (tag_id)
    DO UPDATE SET ratings = t.ratings + EXCLUDED.ratings, candidates = t.candidates + EXCLUDED.candidates;

    -- A viewer's summaries count the candidates they rated.
    INSERT INTO viewer_rating_shapes AS t (viewer_id, project_id, n_real, n_not_real, n_unsure, candidates)
    SELECT m.viewer, w.project_id, w.n_real, w.n_not_real, w.n_unsure, sum(w.sign)
    FROM unnest(s) w CROSS JOIN LATERAL unnest(w.users) m(viewer)
    GROUP BY 1, 2, 3, 4, 5 HAVING sum(w.sign) <> 0 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (viewer_id, project_id, n_real, n_not_real, n_unsure)
    DO UPDATE SET candidates = t.candidates + EXCLUDED.candidates;

    INSERT INTO viewer_reviewer_verdicts AS t (viewer_id, project_id, user_id, verdict, ratings)
    SELECT m.viewer, w.project_id, r.u, r.v, sum(w.sign)
    FROM unnest(s) w CROSS JOIN LATERAL unnest(w.users) m(viewer)
    CROSS JOIN LATERAL unnest(w.users, w.verdicts) r(u, v)
    GROUP BY 1, 2, 3, 4 HAVING sum(w.sign) <> 0 ORDER BY 1, 2, 3, 4
    ON CONFLICT (viewer_id, project_id, user_id, verdict) DO UPDATE SET ratings = t.ratings + EXCLUDED.ratings;

    INSERT INTO viewer_reviewer_pairs AS t (viewer_id, project_id, user_a, user_b, both_rated, agreed)
    SELECT m.viewer, w.project_id, a.u, b.u, sum(w.sign), sum(w.sign * (a.v = b.v)::int)
    FROM unnest(s) w CROSS JOIN LATERAL unnest(w.users) m(viewer)
    CROSS JOIN LATERAL unnest(w.users, w.verdicts) a(u, v)
    CROSS JOIN LATERAL unnest(w.users, w.verdicts) b(u, v)
    WHERE a.u < b.u
    GROUP BY 1, 2, 3, 4 HAVING sum(w.sign) <> 0 OR sum(w.sign * (a.v = b.v)::int) <> 0 ORDER BY 1, 2, 3, 4
    ON CONFLICT (viewer_id, project_id, user_a, user_b)
    DO UPDATE SET both_rated = t.both_rated + EXCLUDED.both_rated, agreed = t.agreed + EXCLUDED.agreed;

    INSERT INTO viewer_tag_counts AS t (viewer_id, tag_id, ratings, candidates)
    SELECT m.viewer, g.tag_id, sum(w.sign * g.n), sum(w.sign)
    FROM unnest(s) w CROSS JOIN LATERAL unnest(w.users) m(viewer)
    CROSS JOIN LATERAL (SELECT x AS tag_id, count(*) AS n FROM unnest(w.tag_ids) x GROUP BY x) g
    WHERE EXISTS (SELECT 1 FROM tags tg WHERE tg.id = g.tag_id)
    GROUP BY 1, 2 HAVING sum(w.sign * g.n) <> 0 OR sum(w.sign) <> 0 ORDER BY 1, 2
    ON CONFLICT (viewer_id, tag_id)
    DO UPDATE SET ratings = t.ratings + EXCLUDED.ratings, candidates = t.candidates + EXCLUDED.candidates;

    -- A candidate is listed for each of its viewers while its ratings
    -- disagree: in when it starts to, out when it stops (a removed
    -- candidate's rows went with it).
    DELETE FROM viewer_disagreements d
    USING (SELECT m.viewer, w.candidate_id
           FROM unnest(s) w CROSS JOIN LATERAL unnest(w.users) m(viewer)
           WHERE (w.n_real > 0)::int + (w.n_not_real > 0)::int + (w.n_unsure > 0)::int > 1
           GROUP BY 1, 2 HAVING sum(w.sign) < 0) o
    WHERE d.viewer_id = o.viewer AND d.candidate_id = o.candidate_id;
    INSERT INTO viewer_disagreements (viewer_id, project_id, candidate_id, name)
    SELECT n.viewer, n.project_id, n.candidate_id, c.name
    FROM (SELECT m.viewer, w.project_id, w.candidate_id
          FROM unnest(s) w CROSS JOIN LATERAL unnest(w.users) m(viewer)
          WHERE (w.n_real > 0)::int + (w.n_not_real > 0)::int + (w.n_unsure > 0)::int > 1
          GROUP BY 1, 2, 3 HAVING sum(w.sign) > 0) n
    JOIN candidates c ON c.id = n.candidate_id
    ORDER BY 1, 3
    ON CONFLICT DO NOTHING;

    RETURN cardinality(ids);
END
$$;

-- After a bulk load: every summary, and the states they were counted
-- from, made again from the rows.
CREATE OR REPLACE FUNCTION refresh_rating_summaries() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM rating_summaries_lock();
    PERFORM refresh_project_rating_summaries();
    PERFORM refresh_viewer_summaries();
    -- DELETE, not TRUNCATE: a flush reads the pending table before it
    -- waits for the lock held here, and TRUNCATE would wait for that flush.
    DELETE FROM rating_summary_pending;
    TRUNCATE candidate_summary_states;
    INSERT INTO candidate_summary_states (candidate_id, project_id, users, verdicts, tag_ids)
    SELECT c.id, c.project_id, r.users, r.verdicts, coalesce(t.tag_ids, '{}')
    FROM (SELECT candidate_id, array_agg(user_id ORDER BY user_id) AS users,
                 array_agg(verdict ORDER BY user_id) AS verdicts
          FROM ratings GROUP BY candidate_id) r
    JOIN candidates c ON c.id = r.candidate_id
    LEFT JOIN (SELECT candidate_id, array_agg(tag_id ORDER BY tag_id) AS tag_ids
               FROM rating_tags GROUP BY candidate_id) t ON t.candidate_id = r.candidate_id;
END
$$;

SELECT refresh_rating_summaries();
