-- Idempotency keys: while a job with a key is pending or running, no other job can take the
-- key, from jobrunner or from plain SQL (`INSERT … ON CONFLICT (unique_key) WHERE unique_key IS
-- NOT NULL AND status IN ('pending', 'running') DO NOTHING`). Once it has ended, the key is free.
ALTER TABLE {job} ADD COLUMN unique_key text;
CREATE UNIQUE INDEX {unique_key_index} ON {job} (unique_key)
    WHERE unique_key IS NOT NULL AND status IN ('pending', 'running');

-- What a job spent (`ctx.record_usage`), as an object of amounts by unit (tokens, cost_usd, …).
ALTER TABLE {job} ADD COLUMN usage jsonb;

-- What each user spent, by UTC day and unit: what budgets are checked against.
CREATE TABLE {usage} (
    user_id  text             NOT NULL,
    day      date             NOT NULL,
    unit     text             NOT NULL,
    amount   double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, day, unit)
);

-- Budgets per user ('' = the default for users without one of their own), per unit and
-- period (a UTC day or calendar month); `types` null: every job type. A user over a budget
-- has its jobs of those types held pending until the period rolls over or the budget grows.
CREATE TABLE {budgets} (
    user_id     text             NOT NULL DEFAULT '',
    unit        text             NOT NULL CHECK (unit <> ''),
    period      text             NOT NULL CHECK (period IN ('daily', 'monthly')),
    amount      double precision NOT NULL CHECK (amount >= 0),
    types       text[],
    updated_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, unit, period)
);

-- Periodic jobs: each tick enqueues one job (with the tick in its idempotency key), taken by
-- one worker under a row lock that also moves `next_run_at` on.
CREATE TABLE {schedules} (
    name          text             PRIMARY KEY CHECK (name <> ''),
    type          text             NOT NULL CHECK (type <> ''),
    payload       jsonb            NOT NULL DEFAULT '{{}}',
    queue         text             NOT NULL DEFAULT 'default',
    priority      integer          NOT NULL DEFAULT 0,
    cron          text,
    every         double precision CHECK (every > 0),
    tz            text             NOT NULL DEFAULT 'UTC',
    missed        text             NOT NULL DEFAULT 'once' CHECK (missed IN ('once', 'skip')),
    paused        boolean          NOT NULL DEFAULT false,
    origin        text             NOT NULL DEFAULT 'cli',  -- or 'plugin:<name>'
    next_run_at   timestamptz,
    last_run_at   timestamptz,
    last_job_id   bigint,
    created_at    timestamptz      NOT NULL DEFAULT now(),
    updated_at    timestamptz      NOT NULL DEFAULT now(),
    CHECK ((cron IS NULL) <> (every IS NULL))
);

-- A budget raised or removed may free held jobs: wake the workers. A schedule added or
-- changed: wake their schedulers (the payload 'schedules' tells them apart).
CREATE TRIGGER {budgets_notify_trigger} AFTER INSERT OR UPDATE OR DELETE ON {budgets}
    FOR EACH STATEMENT EXECUTE FUNCTION {notify_function}();
CREATE FUNCTION {schedules_notify_function}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify({channel_literal}, 'schedules');
    RETURN NULL;
END;
$$;
CREATE TRIGGER {schedules_notify_trigger}
    AFTER INSERT OR DELETE OR UPDATE OF cron, every, tz, paused ON {schedules}
    FOR EACH STATEMENT EXECUTE FUNCTION {schedules_notify_function}();

-- Who is over a budget now, with the budget and what they spent in its period: what claims
-- hold back, and what `budgets show`, `jobs show` and the web app read. A default budget
-- applies to users without one of their own for the same unit and period; a budget of 0 of
-- a user's own holds them before they spend anything (a default of 0: see the claim).
CREATE VIEW {over_budget} AS
WITH period AS (
    SELECT (now() AT TIME ZONE 'UTC')::date AS today,
           date_trunc('month', now() AT TIME ZONE 'UTC')::date AS month
), spent AS (
    SELECT u.user_id, u.unit,
           coalesce(sum(u.amount) FILTER (WHERE u.day = period.today), 0) AS daily,
           sum(u.amount) AS monthly
    FROM {usage} AS u, period
    WHERE u.day >= period.month
    GROUP BY u.user_id, u.unit
), applied AS (
    SELECT s.user_id, b.unit, b.period, b.amount, b.types, b.user_id = '' AS by_default,
           CASE b.period WHEN 'daily' THEN s.daily ELSE s.monthly END AS spent
    FROM spent AS s
    JOIN {budgets} AS b ON b.unit = s.unit AND (b.user_id = s.user_id OR (
        b.user_id = '' AND NOT EXISTS (
            SELECT 1 FROM {budgets} AS own
            WHERE own.user_id = s.user_id AND own.unit = b.unit AND own.period = b.period)))
)
SELECT user_id, unit, period, amount, types, by_default, spent FROM applied
WHERE spent >= amount
UNION ALL
SELECT b.user_id, b.unit, b.period, b.amount, b.types, false, 0
FROM {budgets} AS b
WHERE b.user_id <> '' AND b.amount = 0
  AND NOT EXISTS (SELECT 1 FROM spent AS s WHERE s.user_id = b.user_id AND s.unit = b.unit);
