-- Reference catalogues (RACS, Gaia, PSRCAT, ...) loaded by `vetter catalogue
-- load`, the ones each project matches its candidates against, the matches
-- themselves, and a candidate's association with one known source.

CREATE TABLE catalogues (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    -- Where it was loaded from (a file name), for the admin's list.
    origin      text NOT NULL DEFAULT '' CHECK (length(origin) <= 500),
    -- The kept numeric columns, in the order of catalogue_sources.vals:
    -- [{"name": "flux_peak", "unit": "mJy/beam"}, ...].
    columns     jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(columns) = 'array'),
    row_count   bigint NOT NULL DEFAULT 0,
    loaded_at   timestamptz NOT NULL DEFAULT now()
);

-- One partition per catalogue: a load fills a fresh table and builds its
-- indexes once at the end (much faster than adding millions of rows to
-- existing indexes), and removing a catalogue drops its table at once.
CREATE TABLE catalogue_sources (
    catalogue_id bigint NOT NULL,
    row_no       integer NOT NULL,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    ra           double precision NOT NULL CHECK (ra >= 0 AND ra < 360),
    dec          double precision NOT NULL CHECK (dec BETWEEN -90 AND 90),
    vals         double precision[] NOT NULL DEFAULT '{}'
) PARTITION BY LIST (catalogue_id);
CREATE INDEX catalogue_sources_q3c_idx ON catalogue_sources (q3c_ang2ipix(ra, dec));
CREATE INDEX catalogue_sources_name_idx ON catalogue_sources (catalogue_id, lower(name) text_pattern_ops);
CREATE UNIQUE INDEX catalogue_sources_row_idx ON catalogue_sources (catalogue_id, row_no);

-- Which catalogues a project's candidates are matched against, and how far.
CREATE TABLE project_catalogues (
    project_id    bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
    catalogue_id  bigint NOT NULL REFERENCES catalogues ON DELETE CASCADE,
    radius_arcsec double precision NOT NULL CHECK (radius_arcsec > 0 AND radius_arcsec <= 600),
    PRIMARY KEY (project_id, catalogue_id)
);

-- Every catalogue source within the project's radius of a candidate, kept
-- up to date at ingest, when a catalogue is (re)loaded and when a project's
-- choice changes.
CREATE TABLE catalogue_matches (
    candidate_id      bigint NOT NULL REFERENCES candidates ON DELETE CASCADE,
    catalogue_id      bigint NOT NULL REFERENCES catalogues ON DELETE CASCADE,
    row_no            integer NOT NULL,
    separation_arcsec double precision NOT NULL CHECK (separation_arcsec >= 0),
    PRIMARY KEY (candidate_id, catalogue_id, row_no)
);
CREATE INDEX catalogue_matches_catalogue_idx ON catalogue_matches (catalogue_id, candidate_id);

-- The nearest of them, per candidate and catalogue: what the table filters
-- and sorts on ("no RACS counterpart within 10″"), read from an index in
-- separation order as a metric sort reads candidate_metrics.
CREATE TABLE catalogue_nearest (
    candidate_id      bigint NOT NULL REFERENCES candidates ON DELETE CASCADE,
    catalogue_id      bigint NOT NULL REFERENCES catalogues ON DELETE CASCADE,
    row_no            integer NOT NULL,
    separation_arcsec double precision NOT NULL CHECK (separation_arcsec >= 0),
    PRIMARY KEY (candidate_id, catalogue_id) INCLUDE (separation_arcsec)
);
CREATE INDEX catalogue_nearest_sort_idx ON catalogue_nearest (catalogue_id, separation_arcsec, candidate_id);

-- "This candidate is that known source": one per candidate, a team-wide fact
-- like a tag. The source's name and position are copied so the association
-- outlives a reload or removal of its catalogue.
CREATE TABLE candidate_associations (
    candidate_id      bigint PRIMARY KEY REFERENCES candidates ON DELETE CASCADE,
    catalogue_id      bigint REFERENCES catalogues ON DELETE SET NULL,
    catalogue_name    text NOT NULL,
    source_name       text NOT NULL CHECK (length(source_name) BETWEEN 1 AND 200),
    ra                double precision NOT NULL CHECK (ra >= 0 AND ra < 360),
    dec               double precision NOT NULL CHECK (dec BETWEEN -90 AND 90),
    separation_arcsec double precision NOT NULL CHECK (separation_arcsec >= 0),
    associated_by     bigint REFERENCES users ON DELETE SET NULL,
    associated_at     timestamptz NOT NULL DEFAULT now()
);
