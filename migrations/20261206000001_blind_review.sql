-- The blind rule: a reviewer sees others' ratings of a candidate only after
-- rating it. A project can open its ratings to everyone, or exempt its
-- administrators; both off keeps every project blind, as before.
ALTER TABLE projects ADD COLUMN open_review boolean NOT NULL DEFAULT false;
ALTER TABLE projects ADD COLUMN admins_see_all boolean NOT NULL DEFAULT false;
