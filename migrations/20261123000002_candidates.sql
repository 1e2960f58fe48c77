-- Candidates in: projects, observations, beams, candidates with metrics,
-- extra positions, light curves and files; tags; API tokens; pulsars.
--
-- Every natural key is unique here, not only in code: a re-upload cannot
-- create a duplicate however the request arrives.

CREATE TABLE projects (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug                text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description         text NOT NULL DEFAULT '' CHECK (length(description) <= 5000),
    reviewers_add_tags  boolean NOT NULL DEFAULT false,
    score_enabled       boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- The survey's own numbers: each project says which it has and how to show them.
CREATE TABLE metric_defs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id       bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
    key              text NOT NULL CHECK (key ~ '^[a-z][a-z0-9_]{0,63}$'),
    label            text NOT NULL CHECK (length(label) BETWEEN 1 AND 200),
    unit             text NOT NULL DEFAULT '' CHECK (length(unit) <= 50),
    description      text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    precision        smallint NOT NULL DEFAULT 3 CHECK (precision BETWEEN 0 AND 12),
    shown_by_default boolean NOT NULL DEFAULT true,
    position         integer NOT NULL DEFAULT 0,
    UNIQUE (project_id, key)
);

CREATE TABLE tags (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 64),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 1000),
    position    integer NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX tags_project_name_key ON tags (project_id, lower(name));

CREATE TABLE observations (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id   bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
    external_id  text NOT NULL CHECK (external_id ~ '^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,127}$'),
    start_time   timestamptz,
    pointing_ra  double precision CHECK (pointing_ra >= 0 AND pointing_ra < 360),
    pointing_dec double precision CHECK (pointing_dec BETWEEN -90 AND 90),
    metadata     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    content_hash text NOT NULL DEFAULT '',
    created_by   bigint REFERENCES users ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, external_id),
    -- Lets candidates carry project_id with a guarantee that it matches.
    UNIQUE (id, project_id),
    CHECK ((pointing_ra IS NULL) = (pointing_dec IS NULL))
);

CREATE TABLE beams (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    observation_id bigint NOT NULL REFERENCES observations ON DELETE CASCADE,
    name           text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,63}$'),
    centre_ra      double precision CHECK (centre_ra >= 0 AND centre_ra < 360),
    centre_dec     double precision CHECK (centre_dec BETWEEN -90 AND 90),
    metadata       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    content_hash   text NOT NULL DEFAULT '',
    UNIQUE (observation_id, name),
    UNIQUE (id, observation_id),
    CHECK ((centre_ra IS NULL) = (centre_dec IS NULL))
);

CREATE TABLE candidates (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id     bigint NOT NULL,
    observation_id bigint NOT NULL,
    beam_id        bigint,
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200 AND name !~ '[[:cntrl:]]'),
    ra             double precision NOT NULL CHECK (ra >= 0 AND ra < 360),
    dec            double precision NOT NULL CHECK (dec BETWEEN -90 AND 90),
    -- Text facts that are not numbers (nearest known source name, ...).
    attributes     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object'),
    -- sha256 of the normalised upload, so a re-send can be recognised as unchanged.
    content_hash   text NOT NULL,
    created_by     bigint REFERENCES users ON DELETE SET NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (observation_id, name),
    FOREIGN KEY (observation_id, project_id) REFERENCES observations (id, project_id) ON DELETE CASCADE,
    FOREIGN KEY (beam_id, observation_id) REFERENCES beams (id, observation_id) ON DELETE CASCADE
);
CREATE INDEX candidates_q3c_idx ON candidates (q3c_ang2ipix(ra, dec));
CREATE INDEX candidates_project_name_idx ON candidates (project_id, name, id);
CREATE INDEX candidates_beam_idx ON candidates (beam_id);

-- One row per candidate and metric. NaN and infinities are stored as such
-- (double precision holds them); a missing value is a missing row.
CREATE TABLE candidate_metrics (
    candidate_id bigint NOT NULL REFERENCES candidates ON DELETE CASCADE,
    metric_id    bigint NOT NULL REFERENCES metric_defs ON DELETE CASCADE,
    value        double precision NOT NULL,
    PRIMARY KEY (candidate_id, metric_id)
);
CREATE INDEX candidate_metrics_sort_idx ON candidate_metrics (metric_id, value, candidate_id);

-- Extra named positions (deep-image match, beam centre, nearest known source).
CREATE TABLE candidate_positions (
    candidate_id bigint NOT NULL REFERENCES candidates ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,63}$'),
    ra           double precision NOT NULL CHECK (ra >= 0 AND ra < 360),
    dec          double precision NOT NULL CHECK (dec BETWEEN -90 AND 90),
    PRIMARY KEY (candidate_id, kind)
);
CREATE INDEX candidate_positions_q3c_idx ON candidate_positions (q3c_ang2ipix(ra, dec));

CREATE TABLE light_curves (
    candidate_id bigint PRIMARY KEY REFERENCES candidates ON DELETE CASCADE,
    unit         text NOT NULL DEFAULT '' CHECK (length(unit) <= 50),
    times        timestamptz[] NOT NULL,
    flux         double precision[] NOT NULL,
    flux_err     double precision[],
    content_hash text NOT NULL,
    CHECK (cardinality(times) = cardinality(flux)),
    CHECK (flux_err IS NULL OR cardinality(flux_err) = cardinality(flux))
);

-- Files attached to exactly one candidate, beam or observation. Content is
-- stored once under a name made from its checksum; rows point at it.
CREATE TABLE files (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    candidate_id   bigint REFERENCES candidates ON DELETE CASCADE,
    beam_id        bigint REFERENCES beams ON DELETE CASCADE,
    observation_id bigint REFERENCES observations ON DELETE CASCADE,
    role           text NOT NULL CHECK (role ~ '^[a-z][a-z0-9_]{0,63}$'),
    content_type   text NOT NULL CHECK (content_type IN ('application/fits', 'image/png', 'image/gif', 'text/csv')),
    size_bytes     bigint NOT NULL CHECK (size_bytes >= 0),
    sha256         text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    storage_path   text NOT NULL CHECK (storage_path ~ '^objects/[0-9a-f]{2}/[0-9a-f]{64}\.(fits|png|gif|csv)$'),
    original_name  text NOT NULL DEFAULT '',
    -- A preview the server rendered from another file of the same owner.
    derived_from   bigint REFERENCES files ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (num_nonnulls(candidate_id, beam_id, observation_id) = 1)
);
CREATE UNIQUE INDEX files_candidate_role_key ON files (candidate_id, role) WHERE candidate_id IS NOT NULL;
CREATE UNIQUE INDEX files_beam_role_key ON files (beam_id, role) WHERE beam_id IS NOT NULL;
CREATE UNIQUE INDEX files_observation_role_key ON files (observation_id, role) WHERE observation_id IS NOT NULL;
CREATE INDEX files_storage_path_idx ON files (storage_path);

CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- sha256 of the token; the token itself is shown once and never stored.
    token_hash   text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    -- The first characters, so people can tell their tokens apart.
    prefix       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);

-- The ATNF pulsar catalogue (psrcat), positions J2000 in degrees.
CREATE TABLE pulsars (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 32),
    ra         double precision NOT NULL CHECK (ra >= 0 AND ra < 360),
    dec        double precision NOT NULL CHECK (dec BETWEEN -90 AND 90),
    period_s   double precision,
    dm         double precision,
    s400_mjy   double precision,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pulsars_q3c_idx ON pulsars (q3c_ang2ipix(ra, dec));
