-- The shuffled queue walks (project, shuffle_key, id) from a per-reviewer
-- starting point; without this index each "next" sorted the whole project.
CREATE INDEX candidates_project_shuffle_idx ON candidates (project_id, shuffle_key, id);
