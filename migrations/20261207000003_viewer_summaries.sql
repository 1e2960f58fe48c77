-- The ratings summary of a whole project as each blind reviewer may see it,
-- kept by the rating triggers like the project summaries beside it.
--
-- A reviewer blind in a project sees the ratings of the candidates they
-- rated, and nothing of the rest. Their summary was counted on every
-- /ratings request from the ratings of every candidate they had rated:
-- 200 ms at a million candidates, growing with their work. A viewer's
-- summary is the sum, over the candidates they rated, of what each
-- candidate's current ratings contribute (its shape, each rating's
-- verdict, each pair of its reviewers, whether they disagree), so a
-- change to a candidate's ratings takes the old contribution away from
-- everyone who rated it before and adds the new one to everyone who rates
-- it after: a few rows for each of the candidate's few reviewers.
--
-- Tags are kept apart: a tag row's change goes to everyone who rates its
-- candidate and to its author (whose rating a cascade may have removed
-- first), and a reviewer who starts or stops rating a candidate gains or
-- loses the tags of others' ratings of it.
--
-- Rows left at zero stay (the reads skip them).

CREATE TABLE viewer_rating_shapes (
    viewer_id  bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    project_id bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
    n_real     integer NOT NULL,
    n_not_real integer NOT NULL,
    n_unsure   integer NOT NULL,
    candidates bigint NOT NULL,
    PRIMARY KEY (viewer_id, project_id, n_real, n_not_real, n_unsure)
);

CREATE TABLE viewer_reviewer_verdicts (
    viewer_id  bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    project_id bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
    user_id    bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    verdict    verdict NOT NULL,
    ratings    bigint NOT NULL,
    PRIMARY KEY (viewer_id, project_id, user_id, verdict)
);

CREATE TABLE viewer_reviewer_pairs (
    viewer_id  bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    project_id bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
    user_a     bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    user_b     bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    both_rated bigint NOT NULL,
    agreed     bigint NOT NULL,
    PRIMARY KEY (viewer_id, project_id, user_a, user_b),
    CHECK (user_a < user_b)
);

CREATE TABLE viewer_tag_counts (
    viewer_id  bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    tag_id     bigint NOT NULL REFERENCES tags ON DELETE CASCADE,
    ratings    bigint NOT NULL,
    candidates bigint NOT NULL,
    PRIMARY KEY (viewer_id, tag_id)
);

-- The candidates a viewer rated whose current ratings disagree, for the
-- first hundred by name.
CREATE TABLE viewer_disagreements (
    viewer_id    bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    project_id   bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
    candidate_id bigint NOT NULL REFERENCES candidates ON DELETE CASCADE,
    name         text NOT NULL,
    PRIMARY KEY (viewer_id, candidate_id)
);
CREATE INDEX viewer_disagreements_project_idx ON viewer_disagreements (viewer_id, project_id, name, candidate_id);
CREATE INDEX viewer_disagreements_name_idx ON viewer_disagreements (viewer_id, name, candidate_id);

-- What one candidate's current ratings (`us` beside `vs`) contribute, in
-- (sign 1) or out (sign -1) of the summary of each of `viewers`.
-- (A project on its way out never gets here: see rating_summary_apply.)
CREATE FUNCTION viewer_summary_apply(cid bigint, p bigint, viewers bigint[], us bigint[], vs verdict[],
                                     sign integer)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    a integer;
    b integer;
    c integer;
BEGIN
    IF cardinality(viewers) = 0 OR cardinality(us) = 0 THEN
        RETURN;
    END IF;
    SELECT count(*) FILTER (WHERE x = 'real'), count(*) FILTER (WHERE x = 'not_real'),
           count(*) FILTER (WHERE x = 'unsure')
    INTO a, b, c FROM unnest(vs) x;
    -- Upserts in both directions: each row is found through its primary key
    -- (an UPDATE joined to the arrays was planned as a scan of the table).
    INSERT INTO viewer_rating_shapes AS s (viewer_id, project_id, n_real, n_not_real, n_unsure, candidates)
    SELECT w, p, a, b, c, sign FROM unnest(viewers) w
    ON CONFLICT (viewer_id, project_id, n_real, n_not_real, n_unsure)
    DO UPDATE SET candidates = s.candidates + EXCLUDED.candidates;
    INSERT INTO viewer_reviewer_verdicts AS s (viewer_id, project_id, user_id, verdict, ratings)
    SELECT w, p, r.u, r.v, sign FROM unnest(viewers) w CROSS JOIN unnest(us, vs) r(u, v)
    ON CONFLICT (viewer_id, project_id, user_id, verdict)
    DO UPDATE SET ratings = s.ratings + EXCLUDED.ratings;
    INSERT INTO viewer_reviewer_pairs AS s (viewer_id, project_id, user_a, user_b, both_rated, agreed)
    SELECT w, p, r1.u, r2.u, sign, sign * (r1.v = r2.v)::int
    FROM unnest(viewers) w CROSS JOIN unnest(us, vs) r1(u, v) JOIN unnest(us, vs) r2(u, v) ON r1.u < r2.u
    ON CONFLICT (viewer_id, project_id, user_a, user_b)
    DO UPDATE SET both_rated = s.both_rated + EXCLUDED.both_rated, agreed = s.agreed + EXCLUDED.agreed;
    IF (a > 0)::int + (b > 0)::int + (c > 0)::int > 1 THEN
        IF sign > 0 THEN
            INSERT INTO viewer_disagreements (viewer_id, project_id, candidate_id, name)
            SELECT w, p, cid, (SELECT name FROM candidates WHERE id = cid) FROM unnest(viewers) w
            ON CONFLICT DO NOTHING;
        ELSE
            DELETE FROM viewer_disagreements WHERE viewer_id = ANY(viewers) AND candidate_id = cid;
        END IF;
    END IF;
END
$$;

-- A reviewer starting (1) or ceasing (-1) to rate a candidate gains or
-- loses the tags that others' ratings of it carry. Their own tags count
-- through the tag trigger alone (which includes a tag's author), whichever
-- of a rating and its cascaded tags goes first.
CREATE FUNCTION viewer_tags_apply(viewer bigint, cid bigint, sign integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- From the tag rows, not the tallies: a cascade deletes the reviewer's
    -- own rows before the tag trigger has counted them out.
    INSERT INTO viewer_tag_counts AS s (viewer_id, tag_id, ratings, candidates)
    SELECT viewer, rt.tag_id, sign * count(*), sign FROM rating_tags rt
    WHERE rt.candidate_id = cid AND rt.user_id <> viewer GROUP BY rt.tag_id
    ON CONFLICT (viewer_id, tag_id)
    DO UPDATE SET ratings = s.ratings + EXCLUDED.ratings, candidates = s.candidates + EXCLUDED.candidates;
END
$$;

-- What changes for the reviewers `bu` (beside their verdicts `bv`) who
-- rate a candidate before and after the rating (uid, v) comes in (sign 1)
-- or goes (sign -1): the candidate's shape, that rating, its pairs with
-- theirs, and whether the candidate's reviewers disagree. (Taking the whole
-- old contribution away and adding the new one wrote three times the rows,
-- and every rating waits for these under the summaries' lock.)
CREATE FUNCTION viewer_others_apply(cid bigint, p bigint, bu bigint[], bv verdict[], uid bigint, v verdict,
                                    sign integer)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    a integer;
    b integer;
    c integer;
    da integer := CASE WHEN v = 'real' THEN 1 ELSE 0 END;
    db integer := CASE WHEN v = 'not_real' THEN 1 ELSE 0 END;
    dc integer := CASE WHEN v = 'unsure' THEN 1 ELSE 0 END;
    old_disagree boolean;
    new_disagree boolean;
BEGIN
    IF cardinality(bu) = 0 THEN
        RETURN;
    END IF;
    -- The others' counts; with the rating they are one more in its verdict.
    SELECT count(*) FILTER (WHERE x = 'real'), count(*) FILTER (WHERE x = 'not_real'),
           count(*) FILTER (WHERE x = 'unsure')
    INTO a, b, c FROM unnest(bv) x;
    INSERT INTO viewer_rating_shapes AS s (viewer_id, project_id, n_real, n_not_real, n_unsure, candidates)
    SELECT w, p, k.ka, k.kb, k.kc, k.kd
    FROM unnest(bu) w
    CROSS JOIN (VALUES (a, b, c, -sign), (a + da, b + db, c + dc, sign)) k(ka, kb, kc, kd)
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (viewer_id, project_id, n_real, n_not_real, n_unsure)
    DO UPDATE SET candidates = s.candidates + EXCLUDED.candidates;
    INSERT INTO viewer_reviewer_verdicts AS s (viewer_id, project_id, user_id, verdict, ratings)
    SELECT w, p, uid, v, sign FROM unnest(bu) w
    ON CONFLICT (viewer_id, project_id, user_id, verdict)
    DO UPDATE SET ratings = s.ratings + EXCLUDED.ratings;
    INSERT INTO viewer_reviewer_pairs AS s (viewer_id, project_id, user_a, user_b, both_rated, agreed)
    SELECT w, p, least(uid, o.ou), greatest(uid, o.ou), sign, sign * (o.ov = v)::int
    FROM unnest(bu) w CROSS JOIN unnest(bu, bv) o(ou, ov)
    ON CONFLICT (viewer_id, project_id, user_a, user_b)
    DO UPDATE SET both_rated = s.both_rated + EXCLUDED.both_rated, agreed = s.agreed + EXCLUDED.agreed;
    -- Disagreement with and without the rating.
    old_disagree := (a > 0)::int + (b > 0)::int + (c > 0)::int > 1;
    new_disagree := (a + da > 0)::int + (b + db > 0)::int + (c + dc > 0)::int > 1;
    IF sign < 0 THEN
        -- Before: with the rating; after: without it.
        old_disagree := new_disagree;
        new_disagree := (a > 0)::int + (b > 0)::int + (c > 0)::int > 1;
    END IF;
    IF new_disagree AND NOT old_disagree THEN
        INSERT INTO viewer_disagreements (viewer_id, project_id, candidate_id, name)
        SELECT w, p, cid, (SELECT name FROM candidates WHERE id = cid) FROM unnest(bu) w
        ON CONFLICT DO NOTHING;
    ELSIF old_disagree AND NOT new_disagree THEN
        DELETE FROM viewer_disagreements WHERE viewer_id = ANY(bu) AND candidate_id = cid;
    END IF;
END
$$;

-- The viewers' share of one rating in (1) or out (-1): see
-- rating_summary_apply, which calls this after its own work, with the
-- candidate's other current ratings as they stand. The rating's author
-- gains (or loses) the candidate's whole contribution; its other
-- reviewers, the difference the rating makes.
CREATE FUNCTION viewer_rating_apply(cid bigint, p bigint, uid bigint, v verdict, sign integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    bu bigint[];
    bv verdict[];
BEGIN
    SELECT coalesce(array_agg(user_id ORDER BY user_id), '{}'), coalesce(array_agg(verdict ORDER BY user_id), '{}')
    INTO bu, bv FROM ratings WHERE candidate_id = cid AND user_id <> uid;
    PERFORM viewer_others_apply(cid, p, bu, bv, uid, v, sign);
    PERFORM viewer_summary_apply(cid, p, ARRAY[uid], bu || uid, bv || v, sign);
    PERFORM viewer_tags_apply(uid, cid, sign);
END
$$;

-- The project summaries' function keeps its body under a new name;
-- rating_summary_apply (which the ratings trigger calls by name) now does
-- that, then the viewers' share, under the lock it took.
ALTER FUNCTION rating_summary_apply(bigint, bigint, verdict, integer)
    RENAME TO project_rating_summary_apply;

CREATE FUNCTION rating_summary_apply(cid bigint, uid bigint, v verdict, sign integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    p bigint;
BEGIN
    PERFORM project_rating_summary_apply(cid, uid, v, sign);
    SELECT c.project_id INTO p FROM candidates c JOIN projects pr ON pr.id = c.project_id WHERE c.id = cid;
    -- A candidate or project on its way out: its summaries go with it.
    IF p IS NOT NULL THEN
        PERFORM viewer_rating_apply(cid, p, uid, v, sign);
    END IF;
END
$$;

-- The viewers' share of a tag row's change: everyone who rates the
-- candidate, and the tag's author. Fires after rating_tags_summary (by
-- name), so the candidate's tally of the tag is already counted.
CREATE FUNCTION rating_tags_viewer_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    PERFORM rating_summaries_lock();
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        SELECT coalesce((SELECT ratings FROM candidate_tag_tallies
                         WHERE candidate_id = OLD.candidate_id AND tag_id = OLD.tag_id), 0) INTO n;
        UPDATE viewer_tag_counts s
        SET ratings = s.ratings - 1, candidates = s.candidates - CASE WHEN n = 0 THEN 1 ELSE 0 END
        WHERE s.tag_id = OLD.tag_id
          AND s.viewer_id IN (SELECT r.user_id FROM ratings r WHERE r.candidate_id = OLD.candidate_id
                              UNION SELECT OLD.user_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        SELECT coalesce((SELECT ratings FROM candidate_tag_tallies
                         WHERE candidate_id = NEW.candidate_id AND tag_id = NEW.tag_id), 0) INTO n;
        INSERT INTO viewer_tag_counts AS s (viewer_id, tag_id, ratings, candidates)
        SELECT w, NEW.tag_id, 1, CASE WHEN n = 1 THEN 1 ELSE 0 END
        FROM (SELECT r.user_id FROM ratings r WHERE r.candidate_id = NEW.candidate_id
              UNION SELECT NEW.user_id) x(w)
        ON CONFLICT (viewer_id, tag_id)
        DO UPDATE SET ratings = s.ratings + 1, candidates = s.candidates + EXCLUDED.candidates;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER rating_tags_viewer_summary AFTER INSERT OR DELETE OR UPDATE ON rating_tags
    FOR EACH ROW EXECUTE FUNCTION rating_tags_viewer_trigger();

-- Every viewer summary made again from the rows (after the project
-- summaries, which it reads).
CREATE FUNCTION refresh_viewer_summaries() RETURNS void
LANGUAGE sql AS $$
    TRUNCATE viewer_rating_shapes, viewer_reviewer_verdicts, viewer_reviewer_pairs,
             viewer_tag_counts, viewer_disagreements;
    INSERT INTO viewer_rating_shapes (viewer_id, project_id, n_real, n_not_real, n_unsure, candidates)
    SELECT m.user_id, t.project_id, t.n_real, t.n_not_real, t.n_unsure, count(*)
    FROM ratings m JOIN candidate_tallies t ON t.candidate_id = m.candidate_id
    GROUP BY 1, 2, 3, 4, 5;
    INSERT INTO viewer_reviewer_verdicts (viewer_id, project_id, user_id, verdict, ratings)
    SELECT m.user_id, c.project_id, r.user_id, r.verdict, count(*)
    FROM ratings m JOIN ratings r ON r.candidate_id = m.candidate_id JOIN candidates c ON c.id = m.candidate_id
    GROUP BY 1, 2, 3, 4;
    INSERT INTO viewer_reviewer_pairs (viewer_id, project_id, user_a, user_b, both_rated, agreed)
    SELECT m.user_id, c.project_id, a.user_id, b.user_id, count(*), count(*) FILTER (WHERE a.verdict = b.verdict)
    FROM ratings m JOIN ratings a ON a.candidate_id = m.candidate_id
    JOIN ratings b ON b.candidate_id = m.candidate_id AND b.user_id > a.user_id
    JOIN candidates c ON c.id = m.candidate_id
    GROUP BY 1, 2, 3, 4;
    INSERT INTO viewer_tag_counts (viewer_id, tag_id, ratings, candidates)
    SELECT m.user_id, t.tag_id, sum(t.ratings), count(*)
    FROM ratings m JOIN candidate_tag_tallies t ON t.candidate_id = m.candidate_id
    GROUP BY 1, 2;
    INSERT INTO viewer_disagreements (viewer_id, project_id, candidate_id, name)
    SELECT m.user_id, t.project_id, t.candidate_id, c.name
    FROM ratings m JOIN candidate_tallies t ON t.candidate_id = m.candidate_id
    JOIN candidates c ON c.id = t.candidate_id
    WHERE (t.n_real > 0)::int + (t.n_not_real > 0)::int + (t.n_unsure > 0)::int > 1;
$$;

-- The bulk refresh of the project summaries does the viewers' too (it is
-- called by that name after a bulk load).
ALTER FUNCTION refresh_rating_summaries() RENAME TO refresh_project_rating_summaries;

CREATE FUNCTION refresh_rating_summaries() RETURNS void
LANGUAGE sql AS $$
    SELECT refresh_project_rating_summaries();
    SELECT refresh_viewer_summaries();
$$;

SELECT refresh_viewer_summaries();
ANALYZE viewer_rating_shapes, viewer_reviewer_verdicts, viewer_reviewer_pairs, viewer_tag_counts,
        viewer_disagreements;
