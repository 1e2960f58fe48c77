-- Foundation: accounts, login throttling and the session store.
--
-- q3c is not a trusted extension, so the app's own role cannot create it; the
-- setup scripts create it as a superuser. Fail here with a message that says
-- so rather than later with "function q3c_ang2ipix does not exist".
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'q3c') THEN
        RAISE EXCEPTION 'the q3c extension is not installed in database %', current_database()
            USING HINT = 'as a PostgreSQL superuser run: CREATE EXTENSION q3c; (Debian package postgresql-15-q3c)';
    END IF;
END
$$;

CREATE TYPE user_role AS ENUM ('reviewer', 'admin');

CREATE TABLE users (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username             text NOT NULL CHECK (username ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    password_hash        text NOT NULL,
    role                 user_role NOT NULL DEFAULT 'reviewer',
    active               boolean NOT NULL DEFAULT true,
    can_upload           boolean NOT NULL DEFAULT false,
    must_change_password boolean NOT NULL DEFAULT false,
    -- Bumped whenever every existing session of the user must stop working
    -- (password change, deactivation); sessions remember the epoch they began in.
    session_epoch        integer NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL DEFAULT now(),
    last_login_at        timestamptz
);
-- Usernames are compared case-insensitively, so "Alice" cannot shadow "alice".
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

CREATE TABLE login_failures (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username  text NOT NULL,
    address   inet,
    failed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_username_idx ON login_failures (username, failed_at);
CREATE INDEX login_failures_address_idx ON login_failures (address, failed_at);

-- The layout tower-sessions-sqlx-store expects; created here so the app role
-- needs no CREATE right on the database at run time.
CREATE SCHEMA tower_sessions;
CREATE TABLE tower_sessions.session (
    id          text PRIMARY KEY NOT NULL,
    data        bytea NOT NULL,
    expiry_date timestamptz NOT NULL
);
CREATE INDEX session_expiry_idx ON tower_sessions.session (expiry_date);
