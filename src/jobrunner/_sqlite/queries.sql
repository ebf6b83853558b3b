-- job_insert --
-- Enqueue one job (run once per job inside one transaction, so ids match the input order).
INSERT INTO {job} (type, queue, user_id, parent_id, priority, payload, max_attempts, run_at,
                   created_at, turn, traceparent, unique_key)
VALUES (:type, :queue, :user_id, :parent_id, :priority, :payload, :max_attempts, :run_at, :now,
        :turn, :traceparent, :unique_key)
RETURNING id

-- job_holding_key --
-- The pending or running job that holds an idempotency key.
SELECT id FROM {job} WHERE unique_key = :key AND status IN ('pending', 'running')

-- turn_serving --
-- The turn a type serves now: the lowest of its best-priority pending jobs (0 when none waits).
SELECT coalesce((SELECT turn FROM {job} WHERE status = 'pending' AND type = :type
                 ORDER BY priority DESC, turn LIMIT 1), 0)

-- turn_is_fifo --
-- Whether a type claims in strict FIFO order (fairness off): its jobs all take turn 0.
SELECT EXISTS (SELECT 1 FROM {limits} WHERE type = :type AND NOT fair)

-- turns_take --
-- Take `n` consecutive turns from a user's line, never behind `serving`; returns the first.
INSERT INTO {turns} (type, user_key, next_turn, updated_at)
VALUES (:type, :user_key, :serving + :n, :now)
ON CONFLICT (type, user_key) DO UPDATE
SET next_turn = max(next_turn, :serving) + :n, updated_at = :now
RETURNING next_turn - :n

-- job_claim_candidates --
-- The best runnable pending jobs of one type, at most `free`, as one row of JSON
-- [[id, priority, turn, run_at µs, user_id], ...], skipping paused queues, the users in
-- `capped` (JSON: at their per-user limit, or over a budget) and, when `held_all` (a default
-- budget of 0), every user but those in `exempt`. Read under the claim's write lock.
SELECT json_group_array(json_array(id, priority, turn, CAST(round(run_at * 1000000) AS INTEGER),
                                   user_id)) FROM (
    SELECT id, priority, turn, run_at, user_id FROM {job} AS c
    WHERE status = 'pending' AND type = :type AND run_at <= :now
      AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
      AND NOT EXISTS (SELECT 1 FROM {queue_pauses} AS p WHERE p.queue = c.queue)
      AND (user_id IS NULL OR user_id NOT IN (SELECT value FROM json_each(:capped)))
      AND (user_id IS NULL OR NOT :held_all
           OR user_id IN (SELECT value FROM json_each(:exempt)))
    ORDER BY priority DESC, turn, run_at, id
    LIMIT :free
)

-- limits_of --
-- The limits rows of these types (JSON array), effective values worked out.
SELECT type, coalesce(concurrency, default_concurrency) AS concurrency,
       coalesce(per_user, default_per_user) AS per_user,
       coalesce(rate_count, default_rate_count) AS rate_count,
       coalesce(rate_seconds, default_rate_seconds) AS rate_seconds,
       paused OR coalesce(paused_until > :now, 0) AS paused,
       coalesce(next_start_at <= :now, 1) AS rate_open
FROM {limits} WHERE type IN (SELECT value FROM json_each(:types))

-- running_by_type --
-- Jobs running now of these types (JSON array), across every worker.
SELECT type, count(*) FROM {job}
WHERE status = 'running' AND type IN (SELECT value FROM json_each(:types))
GROUP BY type

-- running_by_user --
-- Jobs running now of these types, by user.
SELECT type, user_id, count(*) FROM {job}
WHERE status = 'running' AND user_id IS NOT NULL
  AND type IN (SELECT value FROM json_each(:types))
GROUP BY type, user_id

-- limits_spend --
-- A rate-limited type started `n` jobs: its next start moves `n` intervals on.
UPDATE {limits}
SET next_start_at = max(coalesce(next_start_at, :now), :now) + :interval * :n
WHERE type = :type

-- job_claim --
-- Mark the picked jobs running; `picked` is JSON [[id, max_attempts, lease], ...].
UPDATE {job} AS job
SET status = 'running',
    attempts = job.attempts + 1,
    max_attempts = coalesce(job.max_attempts, p.max_attempts),
    locked_by = :worker,
    locked_until = :now + p.lease,
    started_at = :now,
    finished_at = NULL
FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS max_attempts,
             json_extract(value, '$[2]') AS lease
      FROM json_each(:picked)) AS p
WHERE job.id = p.id AND job.status = 'pending'

-- job_get_many --
-- Jobs by id (JSON array `ids`) as one row: a JSON array of objects, JSON columns embedded.
-- Times are integer microseconds: JSON keeps only 15 significant digits of a REAL.
SELECT json_group_array(json_object(
    'id', id, 'type', type, 'queue', queue, 'user_id', user_id, 'parent_id', parent_id,
    'status', status, 'priority', priority, 'payload', json(payload), 'result', json(result),
    'error', error, 'progress', progress, 'progress_message', progress_message,
    'checkpoint', json(checkpoint), 'attempts', attempts, 'max_attempts', max_attempts,
    'run_at', CAST(round(run_at * 1000000) AS INTEGER),
    'created_at', CAST(round(created_at * 1000000) AS INTEGER),
    'started_at', CAST(round(started_at * 1000000) AS INTEGER),
    'finished_at', CAST(round(finished_at * 1000000) AS INTEGER),
    'locked_until', CAST(round(locked_until * 1000000) AS INTEGER),
    'locked_by', locked_by, 'cancel_requested', cancel_requested, 'turn', turn,
    'traceparent', traceparent, 'unique_key', unique_key, 'usage', json(usage)))
FROM {job}
WHERE id IN (SELECT value FROM json_each(:ids))

-- job_owned --
-- Which held attempts (JSON [[id, attempt], ...]) this worker still owns, as one row of JSON
-- [[id, cancel_requested], ...]: the fence of job_finish_many and job_extend_leases.
SELECT json_group_array(json_array(job.id, job.cancel_requested))
FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS attempt
      FROM json_each(:held)) AS u
JOIN {job} AS job ON job.id = u.id
WHERE job.status = 'running' AND job.attempts = u.attempt AND job.locked_by = :worker

-- job_finish_many --
-- Record outcomes, fenced: only the worker holding the job's current attempt may finish it.
-- Each outcome comes as the job's next `status` and whether its attempt is `refunded` (handed
-- back, or parked for its children: it does not count, and the last error stays).
-- `outcomes` is JSON [[id, attempt, status, refunded, result, error, delay], ...].
UPDATE {job} AS job
SET status = u.status,
    attempts = job.attempts - u.refunded,
    result = u.result,
    error = CASE WHEN u.refunded THEN job.error ELSE u.error END,
    progress = CASE WHEN u.status = 'completed' THEN 1.0 ELSE job.progress END,
    run_at = CASE WHEN u.status = 'pending' THEN :now + u.delay ELSE job.run_at END,
    finished_at = CASE WHEN u.status = 'pending' THEN NULL ELSE :now END,
    locked_by = NULL,
    locked_until = NULL
FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS attempt,
             json_extract(value, '$[2]') AS status, json_extract(value, '$[3]') AS refunded,
             json_extract(value, '$[4]') AS result, json_extract(value, '$[5]') AS error,
             json_extract(value, '$[6]') AS delay
      FROM json_each(:outcomes)) AS u
WHERE job.id = u.id
  AND job.status = 'running' AND job.attempts = u.attempt AND job.locked_by = :worker

-- job_wake_parents --
-- After job_finish_many, in its transaction: run parked parents now once none of their
-- children is pending or running. Candidates are the jobs just parked (`parked`, JSON ids;
-- their children may all have ended already) and the parents of the jobs just ended (`ended`).
UPDATE {job} AS parent
SET run_at = :now
WHERE parent.id IN (
        SELECT value FROM json_each(:parked)
        UNION
        SELECT parent_id FROM {job}
        WHERE id IN (SELECT value FROM json_each(:ended)) AND parent_id IS NOT NULL)
  AND parent.status = 'pending' AND parent.run_at > :now
  AND NOT EXISTS (
        SELECT 1 FROM {job} AS child
        WHERE child.parent_id = parent.id AND child.status IN ('pending', 'running'))

-- job_extend_leases --
-- Extend the leases of jobs this worker still holds; says which of them were asked to cancel.
-- `held` is JSON [[id, attempt, lease], ...].
UPDATE {job} AS job
SET locked_until = :now + u.lease
FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS attempt,
             json_extract(value, '$[2]') AS lease
      FROM json_each(:held)) AS u
WHERE job.id = u.id
  AND job.status = 'running' AND job.attempts = u.attempt AND job.locked_by = :worker

-- job_rescue_expired --
-- Take back running jobs whose lease ran out: retry them, or fail them when out of attempts.
UPDATE {job}
SET status = CASE WHEN cancel_requested THEN 'cancelled'
                  WHEN attempts >= coalesce(max_attempts, 1) THEN 'failed'
                  ELSE 'pending' END,
    error = 'LeaseExpired: worker ' || coalesce(locked_by, '?')
            || ' stopped renewing the lease of attempt ' || attempts,
    finished_at = CASE WHEN cancel_requested OR attempts >= coalesce(max_attempts, 1)
                       THEN :now END,
    run_at = :now,
    locked_by = NULL,
    locked_until = NULL
WHERE id IN (
    SELECT id FROM {job}
    WHERE status = 'running' AND locked_until < :now
    ORDER BY locked_until
    LIMIT :limit
)
RETURNING id, type, status

-- job_progress_many --
-- Store progress reports, fenced like every other change to a running job.
-- `held` is JSON [[id, attempt, progress, message], ...].
UPDATE {job} AS job
SET progress = u.progress, progress_message = u.message
FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS attempt,
             json_extract(value, '$[2]') AS progress, json_extract(value, '$[3]') AS message
      FROM json_each(:held)) AS u
WHERE job.id = u.id
  AND job.status = 'running' AND job.attempts = u.attempt AND job.locked_by = :worker

-- job_checkpoint_set --
-- Merge one key into a running job's checkpoint, fenced. json_patch drops the old value, then
-- the new member is appended as text: SQLite's JSON paths cannot name every key (a `"` in it),
-- and json_patch alone would merge nested objects and drop their nulls.
UPDATE {job}
SET checkpoint = (
    SELECT CASE WHEN rest = '{{}}' THEN '{{' ELSE substr(rest, 1, length(rest) - 1) || ',' END
           || json_quote(:key) || ':' || json(:value) || '}}'
    FROM (SELECT json_patch(coalesce(checkpoint, '{{}}'), json_object(:key, NULL)) AS rest)
)
WHERE id = :id AND status = 'running' AND attempts = :attempt AND locked_by = :worker
RETURNING id

-- job_cancel --
-- Cancel a pending job at once; ask a running one to stop. Final jobs are left as they are.
UPDATE {job}
SET status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE status END,
    finished_at = CASE WHEN status = 'pending' THEN :now ELSE finished_at END,
    cancel_requested = cancel_requested OR status = 'running'
WHERE id = :id
RETURNING *

-- job_retry --
-- Put a finished job back in the queue with a fresh set of attempts.
UPDATE {job}
SET status = 'pending', attempts = 0, run_at = :now, finished_at = NULL, result = NULL,
    cancel_requested = 0, progress = NULL, progress_message = NULL
WHERE id = :id AND status IN ('failed', 'cancelled', 'completed')
RETURNING *

-- job_get --
-- One job by id.
SELECT * FROM {job} WHERE id = :id

-- job_list --
-- Jobs matching optional filters, newest first.
SELECT * FROM {job}
WHERE (:status IS NULL OR status = :status)
  AND (:type IS NULL OR type = :type)
  AND (:user_id IS NULL OR user_id = :user_id)
  AND (:parent_id IS NULL OR parent_id = :parent_id)
ORDER BY id DESC
LIMIT :limit

-- job_stats --
-- Counts by type and status, with the age of the oldest runnable pending job.
SELECT type, status, count(*) AS count,
       :now - min(run_at) FILTER (WHERE status = 'pending' AND run_at <= :now)
           AS oldest_pending_seconds
FROM {job}
GROUP BY type, status
ORDER BY type, status

-- job_stats_active --
-- Counts of pending and running jobs by type only (what metrics refresh often).
SELECT type, status, count(*) AS count,
       :now - min(run_at) FILTER (WHERE status = 'pending' AND run_at <= :now)
           AS oldest_pending_seconds
FROM {job}
WHERE status IN ('pending', 'running')
GROUP BY type, status
ORDER BY type, status

-- job_next_run_at --
-- Seconds until the next pending job of these types may start (null when none waits), as on
-- PostgreSQL: later for a rate or a back-pressure pause; types paused by hand or at their
-- concurrency, paused queues and users at their per-user limit left out.
WITH lim AS (
    SELECT type, paused, paused_until, next_start_at,
           coalesce(concurrency, default_concurrency) AS concurrency,
           coalesce(per_user, default_per_user) AS per_user
    FROM {limits} WHERE type IN (SELECT value FROM json_each(:types))
), capped AS (
    SELECT r.type, r.user_id
    FROM {job} AS r JOIN lim ON lim.type = r.type AND lim.per_user IS NOT NULL
    WHERE r.status = 'running' AND r.user_id IS NOT NULL
    GROUP BY r.type, r.user_id
    HAVING count(*) >= max(lim.per_user)
), held AS (
    -- Users a budget holds back: their jobs are not due.
    SELECT o.user_id, o.types, 0 AS all_users, '[]' AS exempt FROM {over_budget} AS o
    UNION ALL
    SELECT NULL, d.types, 1, (SELECT json_group_array(own.user_id) FROM {budgets} AS own
                              WHERE own.user_id <> '' AND own.unit = d.unit
                                AND own.period = d.period)
    FROM {budgets} AS d WHERE d.user_id = '' AND d.amount = 0
), due AS (
    SELECT j.type, min(j.run_at) AS run_at
    FROM {job} AS j
    WHERE j.status = 'pending' AND j.type IN (SELECT value FROM json_each(:types))
      AND NOT EXISTS (SELECT 1 FROM {queue_pauses} AS p WHERE p.queue = j.queue)
      AND NOT EXISTS (SELECT 1 FROM capped AS c WHERE c.type = j.type AND c.user_id = j.user_id)
      AND NOT EXISTS (
          SELECT 1 FROM held AS h
          WHERE j.user_id IS NOT NULL
            AND (h.types IS NULL OR j.type IN (SELECT value FROM json_each(h.types)))
            AND (h.user_id = j.user_id OR (h.all_users AND j.user_id NOT IN (
                     SELECT value FROM json_each(h.exempt)))))
    GROUP BY j.type
)
SELECT min(max(due.run_at, coalesce(lim.next_start_at, 0), coalesce(lim.paused_until, 0)))
       - :now AS seconds
FROM due LEFT JOIN lim ON lim.type = due.type
WHERE NOT coalesce(lim.paused OR lim.concurrency = 0, 0)
  AND (lim.concurrency IS NULL OR lim.concurrency > (
          SELECT count(*) FROM {job} AS r WHERE r.status = 'running' AND r.type = due.type))

-- job_delete_finished_before --
-- Delete up to `limit` finished jobs that finished more than `seconds` ago.
DELETE FROM {job}
WHERE id IN (
    SELECT id FROM {job}
    WHERE status IN ('completed', 'failed', 'cancelled') AND finished_at < :now - :seconds
    ORDER BY finished_at
    LIMIT :limit
)

-- job_overdue --
-- Running jobs whose lease has expired (not yet rescued), and the longest-running job's age.
SELECT count(*) FILTER (WHERE locked_until < :now) AS expired_leases,
       :now - min(started_at) AS longest_running_seconds
FROM {job}
WHERE status = 'running'

-- job_cancel_requested --
-- Running jobs asked to cancel: a listener in another process stops those it runs.
SELECT id FROM {job} WHERE status = 'running' AND cancel_requested

-- wakeup_jobs --
-- Tell listeners in other processes that jobs may have become runnable.
UPDATE {wakeup} SET jobs = jobs + 1

-- wakeup_cancels --
-- Tell listeners in other processes that a running job was asked to cancel.
UPDATE {wakeup} SET cancels = cancels + 1

-- wakeup_read --
-- The wake-up counters, read when `PRAGMA data_version` changed.
SELECT jobs, cancels, schedules FROM {wakeup}

-- worker_heartbeat --
-- Register or refresh a worker's heartbeat row.
INSERT INTO {workers} (id, host, pid, version, job_types, concurrency, running, processed,
                       started_at, last_seen)
VALUES (:id, :host, :pid, :version, :job_types, :concurrency, :running, :processed, :now, :now)
ON CONFLICT (id) DO UPDATE
SET running = excluded.running, processed = excluded.processed, last_seen = excluded.last_seen

-- worker_remove --
-- Forget a worker that stopped cleanly, and heartbeats older than `stale_seconds`.
DELETE FROM {workers} WHERE id = :id OR last_seen < :now - :stale_seconds

-- worker_list --
-- Known workers with the seconds since each was last seen.
SELECT id, host, pid, version, job_types, concurrency, running, processed, started_at,
       :now - last_seen AS seen_seconds_ago
FROM {workers}
ORDER BY host, pid

-- tables --
-- The tables in the database file, without SQLite's own.
SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'

-- migrations_create --
-- The bookkeeping table of applied migrations.
CREATE TABLE IF NOT EXISTS {migrations} (
    version            INTEGER PRIMARY KEY,
    name               TEXT NOT NULL,
    jobrunner_version  TEXT NOT NULL,
    applied_at         REAL NOT NULL
)

-- migrations_applied --
-- The versions applied so far.
SELECT version FROM {migrations}

-- migration_record --
-- Remember that a migration was applied, and by which jobrunner.
INSERT INTO {migrations} (version, name, jobrunner_version, applied_at)
VALUES (:version, :name, :jobrunner_version, :now)

-- schema_version --
-- The highest applied migration and the jobrunner version that applied it.
SELECT version, jobrunner_version FROM {migrations} ORDER BY version DESC LIMIT 1

-- schema_columns --
-- The columns the job table has now, with their declared types.
SELECT name, type FROM pragma_table_info(:table)

-- limited_ended --
-- Whether any of these jobs (JSON ids) is of a type with a concurrency limit.
SELECT EXISTS (
    SELECT 1 FROM {limits}
    WHERE type IN (SELECT type FROM {job} WHERE id IN (SELECT value FROM json_each(:ids)))
      AND coalesce(concurrency, default_concurrency, per_user, default_per_user) IS NOT NULL)

-- type_pause_until --
-- Back-pressure: pause a type until `until` (a job hit its provider's rate limit).
INSERT INTO {limits} (type, paused_until, pause_reason) VALUES (:type, :until, :reason)
ON CONFLICT (type) DO UPDATE
SET paused_until = max(coalesce(paused_until, 0), excluded.paused_until),
    pause_reason = excluded.pause_reason, updated_at = :now

-- limits_declare --
-- Record one type's handler defaults, as a starting worker declares them.
INSERT INTO {limits} (type, default_concurrency, default_per_user, default_rate_count,
                      default_rate_seconds)
VALUES (:type, :concurrency, :per_user, :rate_count, :rate_seconds)
ON CONFLICT (type) DO UPDATE
SET default_concurrency = excluded.default_concurrency,
    default_per_user = excluded.default_per_user,
    default_rate_count = excluded.default_rate_count,
    default_rate_seconds = excluded.default_rate_seconds, updated_at = :now
WHERE default_concurrency IS NOT excluded.default_concurrency
   OR default_per_user IS NOT excluded.default_per_user
   OR default_rate_count IS NOT excluded.default_rate_count
   OR default_rate_seconds IS NOT excluded.default_rate_seconds

-- limits_undeclare --
-- A type whose handler declares no defaults loses those an earlier worker declared.
UPDATE {limits}
SET default_concurrency = NULL, default_per_user = NULL, default_rate_count = NULL,
    default_rate_seconds = NULL, updated_at = :now
WHERE type = :type AND coalesce(default_concurrency, default_per_user, default_rate_count)
      IS NOT NULL

-- limits_set --
-- Override some of a type's limits (those given); the others keep their value.
INSERT INTO {limits} (type, concurrency, per_user, rate_count, rate_seconds, fair)
VALUES (:type, :concurrency, :per_user, :rate_count, :rate_seconds, coalesce(:fair, 1))
ON CONFLICT (type) DO UPDATE
SET concurrency = coalesce(excluded.concurrency, concurrency),
    per_user = coalesce(excluded.per_user, per_user),
    rate_count = coalesce(excluded.rate_count, rate_count),
    rate_seconds = coalesce(excluded.rate_seconds, rate_seconds),
    fair = coalesce(:fair, fair), updated_at = :now

-- limits_clear --
-- Drop a type's overrides: its handlers' defaults apply again.
UPDATE {limits}
SET concurrency = NULL, per_user = NULL, rate_count = NULL, rate_seconds = NULL, fair = 1,
    next_start_at = NULL, updated_at = :now
WHERE type = :type

-- limits_forget_empty --
-- Forget a type's row once it holds nothing (no override, default or pause).
DELETE FROM {limits}
WHERE type = :type AND concurrency IS NULL AND per_user IS NULL AND rate_count IS NULL
  AND fair AND NOT paused AND paused_until IS NULL AND default_concurrency IS NULL
  AND default_per_user IS NULL AND default_rate_count IS NULL

-- limits_list --
-- Every type with a limits row, with its jobs running now.
SELECT l.*, (SELECT count(*) FROM {job} AS r WHERE r.status = 'running' AND r.type = l.type)
            AS running
FROM {limits} AS l
ORDER BY l.type

-- type_pause --
-- Pause one job type by hand, cluster-wide.
INSERT INTO {limits} (type, paused, pause_reason) VALUES (:type, 1, :reason)
ON CONFLICT (type) DO UPDATE SET paused = 1, pause_reason = excluded.pause_reason,
                                 updated_at = :now

-- type_resume --
-- Resume job types: a pause by hand and one from back-pressure alike.
UPDATE {limits}
SET paused = 0, paused_until = NULL, pause_reason = NULL, updated_at = :now
WHERE type IN (SELECT value FROM json_each(:types))

-- queue_pause --
-- Pause one queue cluster-wide.
INSERT INTO {queue_pauses} (queue, reason, paused_at) VALUES (:queue, :reason, :now)
ON CONFLICT (queue) DO UPDATE SET reason = excluded.reason

-- queue_resume --
-- Resume queues.
DELETE FROM {queue_pauses} WHERE queue IN (SELECT value FROM json_each(:queues))

-- queue_pauses_list --
-- The paused queues.
SELECT queue, reason, paused_at FROM {queue_pauses} ORDER BY queue

-- job_type_of --
-- One job's type.
SELECT type FROM {job} WHERE id = :id

-- job_usage_get --
-- A job's usage so far (JSON text, or null).
SELECT usage FROM {job} WHERE id = :id

-- job_usage_set --
-- A job's usage, as the whole JSON object.
UPDATE {job} SET usage = :usage WHERE id = :id

-- usage_add --
-- Add to a user's total of one unit for the UTC day `day`.
INSERT INTO {usage} (user_id, day, unit, amount) VALUES (:user_id, :day, :unit, :amount)
ON CONFLICT (user_id, day, unit) DO UPDATE SET amount = amount + excluded.amount

-- usage_totals --
-- Users' totals by UTC day and unit, since `since` (one user, or all).
SELECT user_id, day, unit, amount FROM {usage}
WHERE (:user_id IS NULL OR user_id = :user_id) AND day >= :since
ORDER BY user_id, day DESC, unit

-- budget_set --
-- Add or change a budget (user '' is the default).
INSERT INTO {budgets} (user_id, unit, period, amount, types, updated_at)
VALUES (:user_id, :unit, :period, :amount, :types, :now)
ON CONFLICT (user_id, unit, period) DO UPDATE
SET amount = excluded.amount, types = excluded.types, updated_at = excluded.updated_at

-- budget_remove --
-- Remove a budget; returns it when there was one.
DELETE FROM {budgets} WHERE user_id = :user_id AND unit = :unit AND period = :period
RETURNING user_id

-- budgets_list --
-- Every budget (`types` as JSON text), with what its user spent in its period (null for a
-- default budget).
SELECT b.user_id, b.unit, b.period, b.amount, b.types,
       CASE WHEN b.user_id <> '' THEN coalesce((
           SELECT sum(u.amount) FROM {usage} AS u
           WHERE u.user_id = b.user_id AND u.unit = b.unit
             AND u.day >= CASE b.period WHEN 'daily' THEN date('now')
                                        ELSE date('now', 'start of month') END), 0) END AS spent
FROM {budgets} AS b
ORDER BY b.user_id, b.unit, b.period

-- budgets_any --
-- Whether any budget is set (claims skip budgets entirely when none is).
SELECT EXISTS (SELECT 1 FROM {budgets})

-- budget_holds --
-- Who a budget holds back now, as on PostgreSQL.
SELECT user_id, unit, period, amount, types, by_default, spent FROM {over_budget}
WHERE :user_id IS NULL OR user_id = :user_id
UNION ALL
SELECT u.user_id, d.unit, d.period, d.amount, d.types, 1, 0
FROM {budgets} AS d
CROSS JOIN (SELECT DISTINCT user_id FROM {job}
            WHERE status = 'pending' AND user_id IS NOT NULL
              AND (:user_id IS NULL OR user_id = :user_id)) AS u
WHERE d.user_id = '' AND d.amount = 0
  AND NOT EXISTS (SELECT 1 FROM {budgets} AS own
                  WHERE own.user_id = u.user_id AND own.unit = d.unit AND own.period = d.period)
  AND NOT EXISTS (SELECT 1 FROM {over_budget} AS o  -- listed above already
                  WHERE o.user_id = u.user_id AND o.unit = d.unit AND o.period = d.period)
ORDER BY 1, 2, 3

-- schedule_declare --
-- One of a plugin's schedules, as a starting worker declares it (rows of another origin stay).
INSERT INTO {schedules} (name, type, payload, queue, priority, cron, every, tz, missed, origin)
VALUES (:name, :type, :payload, :queue, :priority, :cron, :every, :tz, :missed, :origin)
ON CONFLICT (name) DO UPDATE
SET type = excluded.type, payload = excluded.payload, queue = excluded.queue,
    priority = excluded.priority,
    next_run_at = CASE WHEN cron IS NOT excluded.cron OR every IS NOT excluded.every
                            OR tz IS NOT excluded.tz
                       THEN NULL ELSE next_run_at END,
    cron = excluded.cron, every = excluded.every, tz = excluded.tz, missed = excluded.missed,
    updated_at = :now
WHERE origin = excluded.origin

-- schedules_forget --
-- A plugin's schedules it no longer declares (`names`: JSON).
DELETE FROM {schedules}
WHERE origin = :origin AND name NOT IN (SELECT value FROM json_each(:names))

-- schedule_add --
-- Add a schedule from the CLI; returns nothing when the name is taken.
INSERT INTO {schedules} (name, type, payload, queue, priority, cron, every, tz, missed, origin)
VALUES (:name, :type, :payload, :queue, :priority, :cron, :every, :tz, :missed, 'cli')
ON CONFLICT (name) DO NOTHING
RETURNING name

-- schedule_remove --
-- Remove a schedule.
DELETE FROM {schedules} WHERE name = :name RETURNING name

-- schedule_pause --
-- Pause or resume a schedule; a resumed one goes on from its next tick (the ticks it missed
-- while paused are not enqueued).
UPDATE {schedules}
SET paused = :paused, updated_at = :now,
    next_run_at = CASE WHEN :paused THEN next_run_at END
WHERE name = :name RETURNING name

-- schedules_list --
-- Every schedule.
SELECT * FROM {schedules} ORDER BY name

-- schedules_due --
-- The schedules due now (or new); the caller holds the write lock.
SELECT * FROM {schedules}
WHERE NOT paused AND (next_run_at IS NULL OR next_run_at <= :now)
ORDER BY name

-- schedule_ticked --
-- A due schedule's tick is done: its next tick, and its last run when it enqueued one.
UPDATE {schedules}
SET next_run_at = :next_run_at, last_run_at = coalesce(:ran_at, last_run_at),
    last_job_id = coalesce(:job_id, last_job_id)
WHERE name = :name

-- schedules_next --
-- Seconds until the next tick of any schedule (null: none).
SELECT min(next_run_at) - :now FROM {schedules} WHERE NOT paused

-- budget_holds_for_types --
-- For the claim: users over a budget (JSON [[user_id, types JSON or null], ...]).
SELECT json_group_array(json_array(user_id, types)) FROM {over_budget}

-- budget_default_zero --
-- For the claim: default budgets of 0 ([[unit, period, types JSON or null], ...]) and the users
-- with a budget of their own ([[user_id, unit, period], ...]).
SELECT (SELECT json_group_array(json_array(unit, period, types)) FROM {budgets}
        WHERE user_id = '' AND amount = 0),
       (SELECT json_group_array(json_array(user_id, unit, period)) FROM {budgets}
        WHERE user_id <> '')

-- === dashboard ===

-- dashboard_overview --
-- The overview's live counts in one statement, as on PostgreSQL: the clock; pending and running
-- jobs by type and queue (each half through its partial index), with the age of the oldest
-- runnable pending job; jobs finished since `since` and, when `older_from` and `older_to` are
-- given, the newest whole minutes of [older_from, older_to) that hold about `budget` jobs (at
-- least one minute), by minute, type, queue and status, read through the finished index.
WITH older AS (
    SELECT max(:older_from,
               min(:older_to - 60,
                   coalesce((SELECT CAST(finished_at / 60 AS INTEGER) * 60 + 60 FROM {job}
                             WHERE status IN ('completed', 'failed', 'cancelled')
                               AND finished_at >= :older_from AND finished_at < :older_to
                             ORDER BY finished_at DESC
                             LIMIT 1 OFFSET :budget),
                            :older_from))) AS low,
           :older_to AS high
    WHERE :older_to IS NOT NULL
), ranges AS (
    SELECT :since AS low, 1e12 AS high
    UNION ALL
    SELECT low, high FROM older
)
SELECT 'clock' AS part, NULL AS type, NULL AS queue, NULL AS status, 0 AS count,
       :now AS value, (SELECT low FROM older) AS minute
UNION ALL
SELECT 'active', type, queue, 'pending', count(*),
       :now - min(run_at) FILTER (WHERE run_at <= :now), NULL
FROM {job} WHERE status = 'pending' GROUP BY type, queue
UNION ALL
SELECT 'active', type, queue, 'running', count(*), NULL, NULL
FROM {job} WHERE status = 'running' GROUP BY type, queue
UNION ALL
SELECT 'finished', j.type, j.queue, j.status, count(*), NULL,
       CAST(j.finished_at / 60 AS INTEGER) * 60
FROM ranges AS r
JOIN {job} AS j ON j.finished_at >= r.low AND j.finished_at < r.high
WHERE j.status IN ('completed', 'failed', 'cancelled')
GROUP BY j.type, j.queue, j.status, CAST(j.finished_at / 60 AS INTEGER)

-- job_id_range --
-- The lowest and highest job ids.
SELECT min(id) AS low, max(id) AS high FROM {job}

-- job_browse --
-- A page of jobs matching the filters (null: any), newest first, without payload, result and
-- checkpoint; only ids in [low, before) are read, as on PostgreSQL.
SELECT id, type, queue, user_id, parent_id, status, priority, error, progress,
       progress_message, attempts, max_attempts, run_at, created_at, started_at, finished_at,
       locked_by, locked_until, cancel_requested
FROM {job}
WHERE id < :before AND id >= :low
  AND (:statuses IS NULL OR status IN (SELECT value FROM json_each(:statuses)))
  AND (:type IS NULL OR type = :type)
  AND (:queue IS NULL OR queue = :queue)
  AND (:user_id IS NULL OR user_id = :user_id)
  AND (:parent_id IS NULL OR parent_id = :parent_id)
  AND (:error IS NULL OR instr(lower(error), lower(:error)) > 0)
ORDER BY id DESC
LIMIT :limit

-- job_count_matching --
-- How many jobs up to `max_id` match the filters, counting no further than `cap` rows.
SELECT count(*) AS count FROM (
    SELECT 1 FROM {job}
    WHERE id <= :max_id
      AND (:statuses IS NULL OR status IN (SELECT value FROM json_each(:statuses)))
      AND (:type IS NULL OR type = :type)
      AND (:queue IS NULL OR queue = :queue)
      AND (:user_id IS NULL OR user_id = :user_id)
      AND (:parent_id IS NULL OR parent_id = :parent_id)
      AND (:error IS NULL OR instr(lower(error), lower(:error)) > 0)
    LIMIT :cap
)

-- job_ids_matching --
-- The ids of the newest `limit` jobs up to `max_id` that match the filters (a bulk action's).
SELECT id FROM {job}
WHERE id <= :max_id
  AND (:statuses IS NULL OR status IN (SELECT value FROM json_each(:statuses)))
  AND (:type IS NULL OR type = :type)
  AND (:queue IS NULL OR queue = :queue)
  AND (:user_id IS NULL OR user_id = :user_id)
  AND (:parent_id IS NULL OR parent_id = :parent_id)
  AND (:error IS NULL OR instr(lower(error), lower(:error)) > 0)
ORDER BY id DESC
LIMIT :limit

-- job_family --
-- A job with its ancestors (up to 50 levels) and up to `limit` descendants (20 levels deep),
-- without payload, result and checkpoint.
WITH RECURSIVE up(id, parent_id, depth) AS (
    SELECT id, parent_id, 0 FROM {job} WHERE id = :id
    UNION ALL
    SELECT j.id, j.parent_id, up.depth + 1
    FROM {job} AS j JOIN up ON j.id = up.parent_id
    WHERE up.depth < 50
), down(id, depth) AS (
    SELECT id, 0 FROM {job} WHERE id = :id
    UNION ALL
    SELECT j.id, down.depth + 1
    FROM {job} AS j JOIN down ON j.parent_id = down.id
    WHERE down.depth < 20 AND j.parent_id IS NOT NULL
    LIMIT :limit
)
SELECT id, type, queue, user_id, parent_id, status, priority, error, progress,
       progress_message, attempts, max_attempts, run_at, created_at, started_at, finished_at,
       locked_by, locked_until, cancel_requested
FROM {job}
WHERE id IN (SELECT id FROM up UNION SELECT id FROM down)
ORDER BY id

-- job_retry_many --
-- job_retry for many jobs (JSON array `ids`): finished ones go back to the queue.
UPDATE {job}
SET status = 'pending', attempts = 0, run_at = :now, finished_at = NULL, result = NULL,
    cancel_requested = 0, progress = NULL, progress_message = NULL
WHERE id IN (SELECT value FROM json_each(:ids))
  AND status IN ('failed', 'cancelled', 'completed')
RETURNING id

-- job_cancel_many --
-- job_cancel for many jobs: pending ones are cancelled, running ones asked to stop.
UPDATE {job}
SET status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE status END,
    finished_at = CASE WHEN status = 'pending' THEN :now ELSE finished_at END,
    cancel_requested = cancel_requested OR status = 'running'
WHERE id IN (SELECT value FROM json_each(:ids)) AND status IN ('pending', 'running')
RETURNING id, type, status, cancel_requested

-- job_run_now_many --
-- Make pending jobs runnable at once (a retry's backoff, a delay or a parent's wait is cut).
UPDATE {job} SET run_at = min(run_at, :now)
WHERE id IN (SELECT value FROM json_each(:ids)) AND status = 'pending'
RETURNING id

-- job_delete_many --
-- Delete finished jobs; pending and running ones are left (cancel them first).
DELETE FROM {job}
WHERE id IN (SELECT value FROM json_each(:ids)) AND status IN ('completed', 'failed', 'cancelled')
RETURNING id
