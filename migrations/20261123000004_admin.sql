-- Administration: the audit log of every admin action and every login.
--
-- Kept in the database, never edited. actor_name is the name at the time
-- (for a failed login, the name that was typed), so a row still reads right
-- without its user; actor_id is NULL for a login under an unknown name.

CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor_id   bigint REFERENCES users,
    actor_name text NOT NULL DEFAULT '' CHECK (length(actor_name) <= 200),
    action     text NOT NULL CHECK (action ~ '^[a-z][a-z_]{0,31}\.[a-z][a-z_]{0,31}$'),
    target     text NOT NULL DEFAULT '' CHECK (length(target) <= 500),
    detail     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(detail) = 'object'),
    address    inet
);
-- Newest first, paged by (at, id); and the same per actor, per typed name
-- and per action for the filters.
CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, at DESC, id DESC);
CREATE INDEX audit_log_actor_name_idx ON audit_log (lower(actor_name), at DESC, id DESC);
CREATE INDEX audit_log_action_idx ON audit_log (action, at DESC, id DESC);
