-- Cluster-wide limits, pauses and fair claiming.
--
-- {limits}: one row per job type that has a limit, a pause or a fairness setting. The
-- `default_*` columns are the handlers' own defaults (written by workers at start); the plain
-- columns are overrides set from the CLI, Python or SQL (null: use the default). Claims of a
-- type that has a row lock it first, so they run one after another and each sees the jobs the
-- last one started.
CREATE TABLE {limits} (
    type                  text        PRIMARY KEY,
    concurrency           integer     CHECK (concurrency >= 0),
    per_user              integer     CHECK (per_user >= 0),
    rate_count            integer     CHECK (rate_count >= 1),
    rate_seconds          double precision CHECK (rate_seconds > 0),
    default_concurrency   integer     CHECK (default_concurrency >= 1),
    default_per_user      integer     CHECK (default_per_user >= 1),
    default_rate_count    integer     CHECK (default_rate_count >= 1),
    default_rate_seconds  double precision CHECK (default_rate_seconds > 0),
    paused                boolean     NOT NULL DEFAULT false,
    paused_until          timestamptz,  -- back-pressure: a handler raised RateLimited
    pause_reason          text,
    fair                  boolean     NOT NULL DEFAULT true,
    next_start_at         timestamptz,  -- the rate limit: when the next job may start
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CHECK ((rate_count IS NULL) = (rate_seconds IS NULL)),
    CHECK ((default_rate_count IS NULL) = (default_rate_seconds IS NULL))
);

-- Queues paused cluster-wide: their jobs stay pending.
CREATE TABLE {queue_pauses} (
    queue      text        PRIMARY KEY,
    reason     text,
    paused_at  timestamptz NOT NULL DEFAULT now()
);

-- Fair claiming: a job's turn is its place in its user's line. A user's jobs take turns
-- next_turn, next_turn + 1, …, never behind the turn the type is serving now, so a user with
-- ten thousand pending jobs is served in turn with one who enqueues a single job. Claims take
-- the lowest turn first within a priority. user_key is '' for jobs without a user.
CREATE TABLE {turns} (
    type        text        NOT NULL,
    user_key    text        NOT NULL,
    next_turn   bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (type, user_key)
);

-- Existing rows take turn 0; new rows get theirs from the insert (or the trigger below).
ALTER TABLE {job} ADD COLUMN turn bigint NOT NULL DEFAULT 0;
ALTER TABLE {job} ALTER COLUMN turn DROP DEFAULT;

CREATE INDEX {fair_claim_index} ON {job} (type, priority DESC, turn, run_at, id)
    WHERE status = 'pending';
DROP INDEX {claim_index_in_schema};

-- A plain INSERT that names no turn (the web app's) gets one here; jobrunner's own inserts
-- compute turns for the whole statement and skip it. It runs with its owner's rights, so a
-- role that may only insert jobs needs no grant on the turns or limits tables.
CREATE FUNCTION {turn_function}() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    serving bigint;
BEGIN
    IF EXISTS (SELECT 1 FROM {limits} WHERE type = NEW.type AND NOT fair) THEN
        NEW.turn := 0;
        RETURN NEW;
    END IF;
    SELECT turn INTO serving FROM {job}
    WHERE status = 'pending' AND type = NEW.type
    ORDER BY priority DESC, turn LIMIT 1;
    INSERT INTO {turns} AS t (type, user_key, next_turn)
    VALUES (NEW.type, coalesce(NEW.user_id, ''), coalesce(serving, 0) + 1)
    ON CONFLICT (type, user_key) DO UPDATE
    SET next_turn = greatest(t.next_turn, coalesce(serving, 0)) + 1, updated_at = now()
    RETURNING next_turn - 1 INTO NEW.turn;
    RETURN NEW;
END;
$$;

CREATE TRIGGER {turn_trigger} BEFORE INSERT ON {job}
    FOR EACH ROW WHEN (NEW.turn IS NULL) EXECUTE FUNCTION {turn_function}();

-- A change to limits or pauses (from the CLI, Python or SQL) wakes idle workers at once; the
-- claims' own bookkeeping (next_start_at) does not.
CREATE FUNCTION {limits_notify_function}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify({channel_literal}, '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER {limits_notify_trigger} AFTER UPDATE ON {limits} FOR EACH ROW
    WHEN ((OLD.concurrency, OLD.per_user, OLD.rate_count, OLD.rate_seconds,
           OLD.default_concurrency, OLD.default_per_user, OLD.default_rate_count,
           OLD.default_rate_seconds, OLD.paused, OLD.paused_until, OLD.fair)
          IS DISTINCT FROM
          (NEW.concurrency, NEW.per_user, NEW.rate_count, NEW.rate_seconds,
           NEW.default_concurrency, NEW.default_per_user, NEW.default_rate_count,
           NEW.default_rate_seconds, NEW.paused, NEW.paused_until, NEW.fair))
    EXECUTE FUNCTION {limits_notify_function}();
CREATE TRIGGER {limits_change_trigger} AFTER INSERT OR DELETE ON {limits}
    FOR EACH ROW EXECUTE FUNCTION {limits_notify_function}();
CREATE TRIGGER {queue_pauses_notify_trigger} AFTER INSERT OR UPDATE OR DELETE ON {queue_pauses}
    FOR EACH ROW EXECUTE FUNCTION {limits_notify_function}();
