-- job_insert --
-- Enqueue one job; unset values take the table's defaults.
INSERT INTO {job} (type, queue, user_id, parent_id, priority, payload, max_attempts, run_at,
                   traceparent)
VALUES (%(type)s, %(queue)s, %(user_id)s, %(parent_id)s, %(priority)s, %(payload)s::jsonb,
        %(max_attempts)s,
        coalesce(%(run_at)s::timestamptz, now() + make_interval(secs => coalesce(%(delay)s, 0))),
        %(traceparent)s)
RETURNING id

-- job_insert_many --
-- Enqueue many jobs in one statement; ids come back in input order. The payloads come as one
-- JSON array; a column with one value for every job comes as that value (`type`, `queue`,
-- `priority`) or, when it is null for every job, as an empty array (ROWS FROM pads it with
-- nulls): a bulk enqueue then binds three parameters, not nine arrays of thousands.
INSERT INTO {job} (type, queue, user_id, parent_id, priority, payload, max_attempts, run_at,
                   traceparent)
SELECT coalesce(t.type, %(type)s), coalesce(t.queue, %(queue)s), t.user_id, t.parent_id,
       coalesce(t.priority, %(priority)s), t.payload, t.max_attempts,
       coalesce(t.run_at, now() + make_interval(secs => coalesce(t.delay, 0))), t.traceparent
FROM ROWS FROM (
         jsonb_array_elements(%(payloads)s::jsonb),
         unnest(%(types)b::text[]), unnest(%(queues)b::text[]), unnest(%(user_ids)b::text[]),
         unnest(%(parent_ids)b::bigint[]), unnest(%(priorities)b::int[]),
         unnest(%(max_attempts)b::int[]), unnest(%(run_ats)b::timestamptz[]),
         unnest(%(delays)b::float8[]), unnest(%(traceparents)b::text[])
     ) WITH ORDINALITY AS t(payload, type, queue, user_id, parent_id, priority, max_attempts,
                            run_at, delay, traceparent, ord)
ORDER BY t.ord
RETURNING id

-- job_claim --
-- Claim runnable jobs, at most `free` of each type and `limit` in all, best priority first.
WITH slot AS (
    SELECT * FROM unnest(%(types)b::text[], %(free)b::int[], %(max_attempts)b::int[],
                         %(leases)b::float8[]) AS s(type, free, max_attempts, lease)
), picked AS (
    SELECT j.id
    FROM slot CROSS JOIN LATERAL (
        SELECT id, priority, run_at FROM {job}
        WHERE status = 'pending' AND type = slot.type AND run_at <= now()
          AND (%(queues)b::text[] IS NULL OR queue = ANY(%(queues)b::text[]))
        ORDER BY priority DESC, run_at, id
        LIMIT slot.free
        FOR UPDATE SKIP LOCKED
    ) AS j
    ORDER BY j.priority DESC, j.run_at, j.id
    LIMIT %(limit)s
)
, claimed AS (
    UPDATE {job} AS job
    SET status = 'running',
        attempts = job.attempts + 1,
        max_attempts = coalesce(job.max_attempts, slot.max_attempts),
        locked_by = %(worker)s,
        locked_until = now() + make_interval(secs => slot.lease),
        started_at = now(),
        finished_at = NULL
    FROM slot
    -- `= ANY(ARRAY(…))` makes the update find its rows by primary key, never by a table scan.
    WHERE job.id = ANY(ARRAY(SELECT id FROM picked)) AND slot.type = job.type
    RETURNING {job_columns}
)
-- Best first: the worker starts them in this order.
SELECT * FROM claimed ORDER BY priority DESC, run_at, id

-- job_finish_many --
-- Record outcomes, fenced: only the worker holding the job's current attempt may finish it.
-- Each outcome comes as the job's next `status`, whether the attempt is `refunded` (handed
-- back, or parked for its children: it does not count, and the last error stays) and whether
-- the job is `parked` until its children end. A child that ends wakes its parent once no
-- sibling is left pending or running.
WITH done AS (
    UPDATE {job} AS job
    SET status = u.status,
        attempts = job.attempts - u.refunded::int,
        result = u.result::jsonb,
        error = CASE WHEN u.refunded THEN job.error ELSE u.error END,
        progress = CASE WHEN u.status = 'completed' THEN 1 ELSE job.progress END,
        run_at = CASE WHEN u.parked AND NOT EXISTS (
                          -- children may have ended already, even in this very batch
                          SELECT 1 FROM {job} AS child
                          WHERE child.parent_id = job.id AND child.status IN ('pending', 'running')
                            AND child.id <> ALL(%(final_ids)b::bigint[]))
                      THEN now()
                      WHEN u.status = 'pending' THEN now() + make_interval(secs => u.delay)
                      ELSE job.run_at END,
        finished_at = CASE WHEN u.status = 'pending' THEN NULL ELSE now() END,
        locked_by = NULL,
        locked_until = NULL
    FROM unnest(%(ids)b::bigint[], %(attempts)b::int[], %(statuses)b::text[],
                %(refunded)b::bool[], %(parked)b::bool[], %(results)b::text[],
                %(errors)b::text[], %(delays)b::float8[])
         AS u(id, attempt, status, refunded, parked, result, error, delay)
    WHERE job.id = ANY(%(ids)b::bigint[]) AND job.id = u.id
      AND job.status = 'running' AND job.attempts = u.attempt AND job.locked_by = %(worker)s
    RETURNING job.id, job.parent_id, job.status
), woken AS (
    UPDATE {job} AS parent
    SET run_at = now()
    WHERE parent.id = ANY(ARRAY(
            SELECT DISTINCT parent_id FROM done
            WHERE parent_id IS NOT NULL AND status IN ('completed', 'failed', 'cancelled')))
      AND parent.status = 'pending' AND parent.run_at > now()
      AND NOT EXISTS (
            SELECT 1 FROM {job} AS sibling
            WHERE sibling.parent_id = parent.id AND sibling.status IN ('pending', 'running')
              AND sibling.id <> ALL(ARRAY(SELECT id FROM done)))
    RETURNING parent.id
)
SELECT id FROM done

-- job_complete_many --
-- The common case of job_finish_many: every outcome is `completed` with no result. Same fence,
-- same parent wake-up; the arrays come as text ('{1,2,3}'), cheaper to build than to bind.
WITH done AS (
    UPDATE {job} AS job
    SET status = 'completed', result = NULL, error = NULL, progress = 1, finished_at = now(),
        locked_by = NULL, locked_until = NULL
    FROM unnest(%(ids)s::bigint[], %(attempts)s::int[]) AS u(id, attempt)
    WHERE job.id = ANY(%(ids)s::bigint[]) AND job.id = u.id
      AND job.status = 'running' AND job.attempts = u.attempt AND job.locked_by = %(worker)s
    RETURNING job.id, job.parent_id
), woken AS (
    UPDATE {job} AS parent
    SET run_at = now()
    WHERE parent.id = ANY(ARRAY(SELECT DISTINCT parent_id FROM done WHERE parent_id IS NOT NULL))
      AND parent.status = 'pending' AND parent.run_at > now()
      AND NOT EXISTS (
            SELECT 1 FROM {job} AS sibling
            WHERE sibling.parent_id = parent.id AND sibling.status IN ('pending', 'running')
              AND sibling.id <> ALL(ARRAY(SELECT id FROM done)))
    RETURNING parent.id
)
SELECT id FROM done

-- job_extend_leases --
-- Extend the leases of jobs this worker still holds; says which of them were asked to cancel.
UPDATE {job} AS job
SET locked_until = now() + make_interval(secs => u.lease)
FROM unnest(%(ids)b::bigint[], %(attempts)b::int[], %(leases)b::float8[]) AS u(id, attempt, lease)
WHERE job.id = ANY(%(ids)b::bigint[]) AND job.id = u.id
  AND job.status = 'running' AND job.attempts = u.attempt AND job.locked_by = %(worker)s
RETURNING job.id, job.cancel_requested

-- job_rescue_expired --
-- Take back running jobs whose lease ran out: retry them, or fail them when out of attempts.
WITH expired AS (
    SELECT id FROM {job}
    WHERE status = 'running' AND locked_until < now()
    ORDER BY locked_until
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE {job} AS job
SET status = CASE WHEN job.cancel_requested THEN 'cancelled'
                  WHEN job.attempts >= coalesce(job.max_attempts, 1) THEN 'failed'
                  ELSE 'pending' END,
    error = 'LeaseExpired: worker ' || coalesce(job.locked_by, '?')
            || ' stopped renewing the lease of attempt ' || job.attempts,
    finished_at = CASE WHEN job.cancel_requested OR job.attempts >= coalesce(job.max_attempts, 1)
                       THEN now() END,
    run_at = now(),
    locked_by = NULL,
    locked_until = NULL
WHERE job.id = ANY(ARRAY(SELECT id FROM expired))
RETURNING job.id, job.type, job.status

-- job_progress_many --
-- Store progress reports, fenced like every other change to a running job.
UPDATE {job} AS job
SET progress = u.progress, progress_message = u.message
FROM unnest(%(ids)s::bigint[], %(attempts)s::int[], %(progress)s::real[], %(messages)s::text[])
     AS u(id, attempt, progress, message)
WHERE job.id = ANY(%(ids)s::bigint[]) AND job.id = u.id
  AND job.status = 'running' AND job.attempts = u.attempt AND job.locked_by = %(worker)s

-- job_checkpoint_set --
-- Merge one key into a running job's checkpoint, fenced.
UPDATE {job}
SET checkpoint = coalesce(checkpoint, '{{}}'::jsonb) || jsonb_build_object(%(key)s::text, %(value)s::jsonb)
WHERE id = %(id)s AND status = 'running' AND attempts = %(attempt)s AND locked_by = %(worker)s
RETURNING id

-- job_cancel --
-- Cancel a pending job at once; ask a running one to stop. Final jobs are left as they are.
UPDATE {job}
SET status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE status END,
    finished_at = CASE WHEN status = 'pending' THEN now() ELSE finished_at END,
    cancel_requested = cancel_requested OR status = 'running'
WHERE id = %(id)s
RETURNING *

-- job_retry --
-- Put a finished job back in the queue with a fresh set of attempts.
UPDATE {job}
SET status = 'pending', attempts = 0, run_at = now(), finished_at = NULL, result = NULL,
    cancel_requested = false, progress = NULL, progress_message = NULL
WHERE id = %(id)s AND status IN ('failed', 'cancelled', 'completed')
RETURNING *

-- job_get --
-- One job by id.
SELECT * FROM {job} WHERE id = %(id)s

-- job_list --
-- Jobs matching optional filters, newest first.
SELECT * FROM {job}
WHERE (%(status)s::text IS NULL OR status = %(status)s::text)
  AND (%(type)s::text IS NULL OR type = %(type)s::text)
  AND (%(user_id)s::text IS NULL OR user_id = %(user_id)s::text)
  AND (%(parent_id)s::bigint IS NULL OR parent_id = %(parent_id)s::bigint)
ORDER BY id DESC
LIMIT %(limit)s

-- job_stats --
-- Counts by type and status, with the age of the oldest runnable pending job.
SELECT type, status, count(*) AS count,
       extract(epoch FROM now() - min(run_at) FILTER (WHERE status = 'pending' AND run_at <= now()))
           AS oldest_pending_seconds
FROM {job}
GROUP BY type, status
ORDER BY type, status

-- job_stats_active --
-- Counts of pending and running jobs by type only: each half reads its own partial index, so
-- frequent callers (metrics) never scan the finished rows.
SELECT type, 'pending' AS status, count(*) AS count,
       extract(epoch FROM now() - min(run_at) FILTER (WHERE run_at <= now()))
           AS oldest_pending_seconds
FROM {job} WHERE status = 'pending' GROUP BY type
UNION ALL
SELECT type, 'running', count(*), NULL FROM {job} WHERE status = 'running' GROUP BY type
ORDER BY 1, 2

-- job_next_run_at --
-- Seconds until the next pending job of these types becomes runnable (null when none waits).
SELECT extract(epoch FROM min(run_at) - now()) AS seconds
FROM {job}
WHERE status = 'pending' AND type = ANY(%(types)s::text[])

-- job_delete_finished_before --
-- Delete up to `limit` finished jobs that finished more than `seconds` ago.
WITH old AS (
    SELECT id FROM {job}
    WHERE status IN ('completed', 'failed', 'cancelled')
      AND finished_at < now() - make_interval(secs => %(seconds)s)
    ORDER BY finished_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
DELETE FROM {job} AS job USING old WHERE job.id = old.id

-- job_notify --
-- Wake idle workers (used after changes the insert trigger does not see, such as a retry).
SELECT pg_notify(%(channel)s, %(payload)s)

-- migrations_create --
-- The bookkeeping table of applied migrations.
CREATE TABLE IF NOT EXISTS {migrations} (
    version            integer PRIMARY KEY,
    name               text NOT NULL,
    jobrunner_version  text NOT NULL,
    applied_at         timestamptz NOT NULL DEFAULT now()
)

-- migrations_applied --
-- The versions applied so far.
SELECT version FROM {migrations}

-- migration_record --
-- Remember that a migration was applied, and by which jobrunner.
INSERT INTO {migrations} (version, name, jobrunner_version) VALUES (%(version)s, %(name)s, %(by)s)

-- schema_version --
-- The highest applied migration and the jobrunner version that applied it.
SELECT version, jobrunner_version FROM {migrations} ORDER BY version DESC LIMIT 1

-- schema_columns --
-- The columns the job table has now, with their types.
SELECT column_name, data_type FROM information_schema.columns
WHERE table_schema = %(schema)s AND table_name = %(table)s

-- worker_heartbeat --
-- Register or refresh a worker's heartbeat row.
INSERT INTO {workers} (id, host, pid, version, job_types, concurrency, running, processed)
VALUES (%(id)s, %(host)s, %(pid)s, %(version)s, %(job_types)s::text[], %(concurrency)s,
        %(running)s, %(processed)s)
ON CONFLICT (id) DO UPDATE
SET running = EXCLUDED.running, processed = EXCLUDED.processed, last_seen = now()

-- worker_remove --
-- Forget a worker that stopped cleanly, and heartbeats older than `stale_seconds`.
DELETE FROM {workers}
WHERE id = %(id)s OR last_seen < now() - make_interval(secs => %(stale_seconds)s)

-- worker_list --
-- Known workers with the seconds since each was last seen.
SELECT id, host, pid, version, job_types, concurrency, running, processed, started_at,
       extract(epoch FROM now() - last_seen) AS seen_seconds_ago
FROM {workers}
ORDER BY host, pid

-- job_overdue --
-- Running jobs whose lease has expired (not yet rescued), and the longest-running job's age.
SELECT count(*) FILTER (WHERE locked_until < now()) AS expired_leases,
       extract(epoch FROM now() - min(started_at)) AS longest_running_seconds
FROM {job}
WHERE status = 'running'
