-- Per-project figures that pages show on every request, kept by triggers as
-- rows arrive and leave, so that no page counts or scans a whole project:
--   project_candidate_counts: how many candidates a project has (the table's
--     count and the ratings summary's total; counting a million candidates
--     through an index took ~10 ms, and every unfiltered table page asked);
--   project_beam_names: the distinct beam names of a project's observations
--     (the table form's beam menu; a DISTINCT over every beam of the
--     project). A name whose beams are all gone stays listed, as position
--     kinds do: filtering by it then finds nothing.
--
-- A project's count is spread over a few rows (a slot per backend, summed
-- when read): the row a trigger bumps stays locked until the upload's
-- transaction ends, and with a single row two uploads into one project
-- would wait for each other.

CREATE TABLE project_candidate_counts (
    project_id bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
    slot       smallint NOT NULL CHECK (slot BETWEEN 0 AND 7),
    candidates bigint NOT NULL,
    PRIMARY KEY (project_id, slot)
);

CREATE TABLE project_beam_names (
    project_id bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
    name       text NOT NULL,
    PRIMARY KEY (project_id, name)
);

CREATE FUNCTION count_arrived_candidates() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO project_candidate_counts AS p (project_id, slot, candidates)
    SELECT project_id, pg_backend_pid() % 8, count(*) FROM arrived GROUP BY project_id
    ON CONFLICT (project_id, slot) DO UPDATE SET candidates = p.candidates + excluded.candidates;
    RETURN NULL;
END
$$;

CREATE FUNCTION count_removed_candidates() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Into this backend's slot, which may go below zero: only the sum counts.
    -- (No row for a project being deleted: its rows went with it.)
    INSERT INTO project_candidate_counts AS p (project_id, slot, candidates)
    SELECT g.project_id, pg_backend_pid() % 8, -count(*) FROM gone g
    WHERE EXISTS (SELECT 1 FROM projects x WHERE x.id = g.project_id)
    GROUP BY g.project_id
    ON CONFLICT (project_id, slot) DO UPDATE SET candidates = p.candidates + excluded.candidates;
    RETURN NULL;
END
$$;

CREATE TRIGGER candidates_count_insert
    AFTER INSERT ON candidates
    REFERENCING NEW TABLE AS arrived
    FOR EACH STATEMENT EXECUTE FUNCTION count_arrived_candidates();

CREATE TRIGGER candidates_count_delete
    AFTER DELETE ON candidates
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION count_removed_candidates();

CREATE FUNCTION note_beam_names() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO project_beam_names (project_id, name)
    SELECT DISTINCT o.project_id, a.name FROM arrived a JOIN observations o ON o.id = a.observation_id
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER beams_note_names
    AFTER INSERT ON beams
    REFERENCING NEW TABLE AS arrived
    FOR EACH STATEMENT EXECUTE FUNCTION note_beam_names();

-- Every list above made again from the rows (and the position kinds): once
-- here, and after a bulk load that ran without triggers.
CREATE FUNCTION refresh_project_lists() RETURNS void
LANGUAGE sql AS $$
    TRUNCATE project_candidate_counts, project_beam_names, position_kinds;
    INSERT INTO project_candidate_counts (project_id, slot, candidates)
    SELECT p.id, 0, (SELECT count(*) FROM candidates c WHERE c.project_id = p.id) FROM projects p;
    INSERT INTO project_beam_names (project_id, name)
    SELECT DISTINCT o.project_id, b.name FROM beams b JOIN observations o ON o.id = b.observation_id;
    INSERT INTO position_kinds (kind) SELECT DISTINCT kind FROM candidate_positions;
$$;

SELECT refresh_project_lists();
