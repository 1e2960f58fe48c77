-- The decision screen. A project marks the metrics a reviewer reads at a
-- glance (headline) and may say which values are good, so that a number
-- can be coloured rather than read; and how long after a new candidate is
-- painted a verdict key is still ignored, so that a double press cannot
-- rate a candidate nobody has looked at.
ALTER TABLE metric_defs
    ADD COLUMN headline boolean NOT NULL DEFAULT false,
    ADD COLUMN good_min double precision
        CHECK (good_min IS NULL OR (good_min > '-Infinity' AND good_min < 'Infinity')),
    ADD COLUMN good_max double precision
        CHECK (good_max IS NULL OR (good_max > '-Infinity' AND good_max < 'Infinity')),
    ADD CONSTRAINT metric_defs_good_range CHECK (good_min IS NULL OR good_max IS NULL OR good_min <= good_max);

ALTER TABLE projects
    ADD COLUMN key_guard_ms integer NOT NULL DEFAULT 250 CHECK (key_guard_ms BETWEEN 0 AND 2000);

-- A reviewer's keyboard (WCAG 2.1.4): single-key shortcuts can be switched
-- off, and any shortcut given another key.
ALTER TABLE users
    ADD COLUMN single_key_shortcuts boolean NOT NULL DEFAULT true,
    ADD COLUMN key_map jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(key_map) = 'object');
