-- Notifications: per-project targets (webhooks, Slack, e-mail), the events
-- that happen (an upload finished, a candidate settled real, a reviewer's
-- daily summary, a VOEvent for a broker) and one delivery per event and
-- receiver, queued in the transaction that caused it and sent by a
-- background worker (src/notify/worker.rs).

-- Where a project's notifications go. A URL may carry a secret (Slack's
-- incoming-webhook URLs are one), so it is stored sealed with a key from the
-- settings (src/notify/seal.rs); `url_hint` is what admins are shown of it.
CREATE TABLE notify_targets (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    kind        text NOT NULL CHECK (kind IN ('webhook', 'slack', 'email')),
    url_sealed  bytea CHECK (length(url_sealed) <= 4096),
    url_hint    text NOT NULL DEFAULT '' CHECK (length(url_hint) <= 300),
    addresses   text[] NOT NULL DEFAULT '{}' CHECK (cardinality(addresses) <= 50),
    events      text[] NOT NULL CHECK (cardinality(events) >= 1
                                       AND events <@ ARRAY['upload_finished', 'consensus_real']),
    enabled     boolean NOT NULL DEFAULT true,
    created_by  bigint REFERENCES users ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'email') = (url_sealed IS NULL)),
    CHECK (kind <> 'email' OR cardinality(addresses) >= 1)
);
CREATE INDEX notify_targets_project_idx ON notify_targets (project_id);
CREATE UNIQUE INDEX notify_targets_name_key ON notify_targets (project_id, lower(name));

-- Something worth telling. `body` holds the facts of the message, taken when
-- the event happened (consensus, summaries, tests) or, for an upload, when
-- its first delivery is attempted, so that the model has had a moment to
-- score the new candidates; every delivery of the event then says the same.
CREATE TABLE notify_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  bigint REFERENCES projects ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('upload_finished', 'consensus_real', 'daily_summary', 'voevent', 'test')),
    subject     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(subject) = 'object'),
    body        jsonb CHECK (jsonb_typeof(body) = 'object'),
    -- A VOEvent document, sent as it is.
    xml         text CHECK (length(xml) <= 1048576),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'voevent') = (xml IS NOT NULL))
);
CREATE INDEX notify_events_project_idx ON notify_events (project_id, id);

-- One event to one receiver: a target of the project, the broker of the
-- settings (VOEvent), or a user's own address (daily summary).
--
-- A worker claims a due row by moving next_attempt_at a lease ahead and
-- stamping it with a token of its own, in one statement with SKIP LOCKED, so
-- that no other worker (on this host or another) takes it meanwhile; it then
-- sends with no connection or transaction open, and records the outcome only
-- if the row still carries its token. A worker that died mid-send leaves the
-- row to be claimed again when the lease runs out.
CREATE TABLE notify_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        bigint NOT NULL REFERENCES notify_events ON DELETE CASCADE,
    target_id       bigint REFERENCES notify_targets ON DELETE CASCADE,
    channel         text NOT NULL CHECK (channel IN ('webhook', 'slack', 'email', 'broker')),
    -- A daily summary's addressee (the address is read when it is sent).
    user_id         bigint REFERENCES users ON DELETE CASCADE,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease           bigint,
    leased_until    timestamptz,
    last_attempt_at timestamptz,
    last_error      text NOT NULL DEFAULT '' CHECK (length(last_error) <= 2000),
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- A broker delivery goes to the settings' broker; any other to a target
    -- or a user, one of the two.
    CHECK (CASE WHEN channel = 'broker' THEN target_id IS NULL AND user_id IS NULL
                ELSE (target_id IS NOT NULL) <> (user_id IS NOT NULL) END)
);
-- What the workers poll: only rows still to send, in the order they are due.
CREATE INDEX notify_deliveries_due_idx ON notify_deliveries (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX notify_deliveries_event_idx ON notify_deliveries (event_id);
CREATE INDEX notify_deliveries_target_idx ON notify_deliveries (target_id);
CREATE INDEX notify_deliveries_user_idx ON notify_deliveries (user_id);

-- An upload is finished when its pipeline says so
-- (POST /api/v1/projects/{project}/observations/{observation}/finished).
ALTER TABLE observations ADD COLUMN upload_finished_at timestamptz;

-- The daily summary, opt-in, to an address the reviewer gives.
ALTER TABLE users
    ADD COLUMN email text CHECK (length(email) BETWEEN 3 AND 254),
    ADD COLUMN daily_summary boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT users_daily_summary_needs_email CHECK (NOT daily_summary OR email IS NOT NULL);

-- The days whose summary each user has been sent (queued), so that several
-- app hosts queue one each.
CREATE TABLE daily_summaries (
    user_id  bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    day      date NOT NULL,
    PRIMARY KEY (user_id, day)
);

-- Queues `kind` to every enabled target of the project that subscribes to
-- it, in the caller's transaction; returns how many deliveries it queued.
-- No event row is written when nobody listens.
CREATE FUNCTION notify_queue(p bigint, ev text, subj jsonb, facts jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    e bigint;
    n integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM notify_targets WHERE project_id = p AND enabled AND ev = ANY (events)) THEN
        RETURN 0;
    END IF;
    INSERT INTO notify_events (project_id, kind, subject, body) VALUES (p, ev, subj, facts)
    RETURNING id INTO e;
    INSERT INTO notify_deliveries (event_id, target_id, channel)
    SELECT e, t.id, t.kind FROM notify_targets t
    WHERE t.project_id = p AND t.enabled AND ev = ANY (t.events)
    ORDER BY t.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- Each candidate is announced as settled real once: the first time its
-- tally reaches the project's rule. A candidate that later falls back to
-- disputed and settles real again is not announced a second time.
CREATE TABLE consensus_announcements (
    candidate_id bigint PRIMARY KEY REFERENCES candidates ON DELETE CASCADE,
    announced_at timestamptz NOT NULL DEFAULT now()
);
-- Those settled before notifications existed are not news.
INSERT INTO consensus_announcements (candidate_id)
SELECT t.candidate_id FROM candidate_tallies t JOIN projects p ON p.id = t.project_id
WHERE consensus_state(t.n_real, t.n_not_real, p.consensus_k) = 'settled_real';

-- The tallies change with every rating written, whichever way (one rating,
-- a batch, a saved view, an undo, a bulk job that refreshes the summaries),
-- inside the transaction that writes it: so the announcement is queued, or
-- rolled back, with the rating that settles the candidate.
CREATE FUNCTION notify_consensus_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    k integer;
    facts jsonb;
BEGIN
    SELECT consensus_k INTO k FROM projects WHERE id = NEW.project_id;
    IF k IS NULL OR consensus_state(NEW.n_real, NEW.n_not_real, k) <> 'settled_real' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND consensus_state(OLD.n_real, OLD.n_not_real, k) = 'settled_real' THEN
        RETURN NULL;
    END IF;
    INSERT INTO consensus_announcements (candidate_id) VALUES (NEW.candidate_id)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT jsonb_build_object(
               'candidate', jsonb_build_object('id', c.id, 'name', c.name, 'ra', c.ra, 'dec', c.dec,
                                               'observation', o.external_id),
               'votes', jsonb_build_object('real', NEW.n_real, 'not_real', NEW.n_not_real,
                                           'unsure', NEW.n_unsure),
               'consensus_k', k)
    INTO facts
    FROM candidates c JOIN observations o ON o.id = c.observation_id
    WHERE c.id = NEW.candidate_id;
    PERFORM notify_queue(NEW.project_id, 'consensus_real',
                         jsonb_build_object('candidate_id', NEW.candidate_id), facts);
    RETURN NULL;
END
$$;

CREATE TRIGGER candidate_tallies_consensus AFTER INSERT OR UPDATE ON candidate_tallies
    FOR EACH ROW EXECUTE FUNCTION notify_consensus_trigger();
