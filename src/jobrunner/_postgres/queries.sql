-- job_insert --
-- Enqueue one job; unset values take the table's defaults. Its turn is its place in its
-- user's line (see `{turns}`): the user's next turn, never behind the turn the type serves
-- now; 0 for a type that is not fair. With an idempotency key that a pending or running job
-- holds, nothing is inserted and that job's id comes back (none when that job committed after
-- this statement began: the caller asks again).
WITH serving AS (
    SELECT coalesce((SELECT turn FROM {job} WHERE status = 'pending' AND type = %(type)s
                     ORDER BY priority DESC, turn LIMIT 1), 0) AS turn
), line AS (
    INSERT INTO {turns} AS t (type, user_key, next_turn)
    SELECT %(type)s, coalesce(%(user_id)s::text, ''), serving.turn + 1 FROM serving
    WHERE NOT EXISTS (SELECT 1 FROM {limits} WHERE type = %(type)s AND NOT fair)
    ON CONFLICT (type, user_key) DO UPDATE
    SET next_turn = greatest(t.next_turn, EXCLUDED.next_turn - 1) + 1, updated_at = now()
    RETURNING next_turn - 1 AS turn
), inserted AS (
    INSERT INTO {job} (type, queue, user_id, parent_id, priority, payload, max_attempts, run_at,
                       turn, traceparent, unique_key)
    VALUES (%(type)s, %(queue)s, %(user_id)s, %(parent_id)s, %(priority)s, %(payload)s::jsonb,
            %(max_attempts)s,
            coalesce(%(run_at)s::timestamptz,
                     now() + make_interval(secs => coalesce(%(delay)s, 0))),
            coalesce((SELECT turn FROM line), 0), %(traceparent)s, %(unique_key)s::text)
    ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND status IN ('pending', 'running')
    DO NOTHING
    RETURNING id
)
SELECT id FROM inserted
UNION ALL
SELECT id FROM {job}
WHERE %(unique_key)s::text IS NOT NULL AND unique_key = %(unique_key)s::text
  AND status IN ('pending', 'running') AND NOT EXISTS (SELECT 1 FROM inserted)

-- job_insert_many --
-- Enqueue many jobs in one statement; ids come back in input order. The payloads come as one
-- JSON array; a column with one value for every job comes as that value (`type`, `queue`,
-- `priority`) or, when it is null for every job, as an empty array (ROWS FROM pads it with
-- nulls): a bulk enqueue then binds three parameters, not nine arrays of thousands. Each
-- user's jobs take consecutive turns from the user's line, oldest run_at first.
WITH t AS (
    SELECT coalesce(t.type, %(type)s) AS type, coalesce(t.queue, %(queue)s) AS queue,
           t.user_id, t.parent_id, coalesce(t.priority, %(priority)s) AS priority, t.payload,
           t.max_attempts, coalesce(t.run_at, now() + make_interval(secs => coalesce(t.delay, 0)))
               AS run_at,
           t.traceparent, t.ord
    FROM ROWS FROM (
             jsonb_array_elements(%(payloads)s::jsonb),
             unnest(%(types)b::text[]), unnest(%(queues)b::text[]), unnest(%(user_ids)b::text[]),
             unnest(%(parent_ids)b::bigint[]), unnest(%(priorities)b::int[]),
             unnest(%(max_attempts)b::int[]), unnest(%(run_ats)b::timestamptz[]),
             unnest(%(delays)b::float8[]), unnest(%(traceparents)b::text[])
         ) WITH ORDINALITY AS t(payload, type, queue, user_id, parent_id, priority, max_attempts,
                                run_at, delay, traceparent, ord)
), numbered AS (
    SELECT t.*, coalesce(t.user_id, '') AS user_key,
           row_number() OVER (PARTITION BY t.type, coalesce(t.user_id, '')
                              ORDER BY t.run_at, t.ord) - 1 AS nth
    FROM t
), groups AS (
    SELECT g.type, g.user_key, g.n,
           coalesce((SELECT j.turn FROM {job} j WHERE j.status = 'pending' AND j.type = g.type
                     ORDER BY j.priority DESC, j.turn LIMIT 1), 0) AS serving
    FROM (SELECT type, user_key, count(*) AS n FROM numbered GROUP BY type, user_key) AS g
    WHERE NOT EXISTS (SELECT 1 FROM {limits} l WHERE l.type = g.type AND NOT l.fair)
), line AS (
    INSERT INTO {turns} AS tr (type, user_key, next_turn)
    SELECT type, user_key, serving + n FROM groups
    ON CONFLICT (type, user_key) DO UPDATE
    SET next_turn = greatest(tr.next_turn + (SELECT g.n FROM groups g
                                             WHERE g.type = tr.type AND g.user_key = tr.user_key),
                             EXCLUDED.next_turn),
        updated_at = now()
    RETURNING tr.type, tr.user_key, tr.next_turn
)
INSERT INTO {job} (type, queue, user_id, parent_id, priority, payload, max_attempts, run_at,
                   turn, traceparent)
SELECT n.type, n.queue, n.user_id, n.parent_id, n.priority, n.payload, n.max_attempts, n.run_at,
       coalesce(line.next_turn - g.n + n.nth, 0), n.traceparent
FROM numbered n
LEFT JOIN groups g ON g.type = n.type AND g.user_key = n.user_key
LEFT JOIN line ON line.type = n.type AND line.user_key = n.user_key
ORDER BY n.ord
RETURNING id

-- job_claim_lock --
-- Lock the limits rows of the types about to be claimed, in one order: claims of a limited
-- type then run one after another, and the claim that follows in this transaction sees every
-- job the one before it started (a statement's snapshot is taken when it starts).
SELECT type FROM {limits} WHERE type = ANY(%(types)s::text[]) ORDER BY type FOR UPDATE

-- job_claim --
-- Claim runnable jobs, at most `free` of each type and `limit` in all. Within a type: best
-- priority first, then the lowest turn (users take turns), then the oldest; across types (when
-- `limit` cuts), best priority, then age: each job ranks by the latest run_at up to its place
-- in its type's line, so the line's order holds and types still interleave by age, as a plain
-- FIFO would. A type's cluster-wide limits cut
-- its `free`: its concurrency (jobs running anywhere, claimed-ahead ones included), its rate
-- (one start per interval, spaced evenly), a pause; users at their per-user limit are skipped,
-- and no user gets more than its limit leaves in one claim. Paused queues are skipped.
WITH slot AS (
    SELECT * FROM unnest(%(types)b::text[], %(free)b::int[], %(max_attempts)b::int[],
                         %(leases)b::float8[]) AS s(type, free, max_attempts, lease)
), lim AS (
    SELECT l.type,
           coalesce(l.concurrency, l.default_concurrency) AS concurrency,
           coalesce(l.per_user, l.default_per_user) AS per_user,
           coalesce(l.rate_count, l.default_rate_count) AS rate_count,
           coalesce(l.rate_seconds, l.default_rate_seconds) AS rate_seconds,
           l.paused OR coalesce(l.paused_until > now(), false) AS paused,
           coalesce(l.next_start_at <= statement_timestamp(), true) AS rate_open
    FROM {limits} AS l
    WHERE l.type = ANY(%(types)b::text[])
), budgeted AS (
    SELECT EXISTS (SELECT 1 FROM {budgets}) AS present
), allowed AS (
    SELECT slot.type, slot.max_attempts, slot.lease, lim.per_user, lim.rate_count,
           lim.rate_seconds,
           -- Users held back by a budget (none when there is no budget at all): those over
           -- one, and when a default of 0 applies, everyone without a budget of their own.
           CASE WHEN (SELECT present FROM budgeted) THEN ARRAY(
                    SELECT o.user_id FROM {over_budget} AS o
                    WHERE o.types IS NULL OR slot.type = ANY(o.types))
                ELSE '{{}}'::text[] END AS held,
           coalesce((SELECT present FROM budgeted) AND EXISTS (
                    SELECT 1 FROM {budgets} AS d
                    WHERE d.user_id = '' AND d.amount = 0
                      AND (d.types IS NULL OR slot.type = ANY(d.types))), false) AS hold_all,
           CASE WHEN (SELECT present FROM budgeted) THEN ARRAY(
                    SELECT own.user_id FROM {budgets} AS own JOIN {budgets} AS d
                      ON d.user_id = '' AND d.amount = 0 AND d.unit = own.unit
                     AND d.period = own.period AND (d.types IS NULL OR slot.type = ANY(d.types))
                    WHERE own.user_id <> '')
                ELSE '{{}}'::text[] END AS exempt,
           CASE WHEN lim.type IS NULL THEN slot.free
                WHEN lim.paused OR lim.concurrency = 0 THEN 0
                ELSE least(
                    slot.free,
                    CASE WHEN lim.concurrency IS NULL THEN slot.free
                         ELSE greatest(lim.concurrency - (
                             SELECT count(*) FROM {job} AS r
                             WHERE r.status = 'running' AND r.type = slot.type), 0)
                    END,
                    CASE WHEN lim.rate_count IS NULL THEN slot.free
                         WHEN lim.rate_open THEN 1 ELSE 0 END)
           END AS free
    FROM slot LEFT JOIN lim ON lim.type = slot.type
), busy AS (
    -- Running jobs by user, for the types with a per-user limit only.
    SELECT r.type, r.user_id, count(*) AS running
    FROM {job} AS r
    WHERE r.status = 'running' AND r.user_id IS NOT NULL
      AND r.type = ANY(ARRAY(SELECT type FROM allowed WHERE per_user IS NOT NULL))
    GROUP BY r.type, r.user_id
), candidates AS (
    -- Types without a per-user limit: the first `free` of the type's line, as they come from
    -- the index. The filters are worked out once: a join here (or a bare `<> ALL`) makes the
    -- planner guess that few rows pass and sort every pending job of the type.
    SELECT j.id, j.type, j.priority, j.turn, j.run_at
    FROM allowed CROSS JOIN LATERAL (
        SELECT id, type, priority, turn, run_at FROM {job} AS c
        WHERE status = 'pending' AND type = allowed.type AND run_at <= now()
          AND (%(queues)b::text[] IS NULL OR queue = ANY(%(queues)b::text[]))
          AND CASE WHEN EXISTS (SELECT 1 FROM {queue_pauses})
                   THEN queue <> ALL(ARRAY(SELECT queue FROM {queue_pauses})) ELSE true END
          AND CASE WHEN cardinality(allowed.held) = 0 AND NOT allowed.hold_all THEN true
                   ELSE c.user_id IS NULL OR NOT (c.user_id = ANY(allowed.held) OR (
                            allowed.hold_all AND c.user_id <> ALL(allowed.exempt))) END
        ORDER BY priority DESC, turn, run_at, id
        LIMIT allowed.free
        FOR UPDATE SKIP LOCKED
    ) AS j
    WHERE allowed.free > 0 AND allowed.per_user IS NULL
    UNION ALL
    -- Types with a per-user limit: users at their limit skipped, and no user given more than
    -- its limit leaves (ranked first, then locked: FOR UPDATE cannot sit beside a window).
    SELECT j.id, j.type, j.priority, j.turn, j.run_at
    FROM allowed CROSS JOIN LATERAL (
        SELECT job.id, job.type, job.priority, job.turn, job.run_at FROM {job} AS job
        WHERE job.id = ANY(ARRAY(
            SELECT ranked.id FROM (
                SELECT c.id, c.priority, c.turn, c.run_at, c.user_id,
                       row_number() OVER (PARTITION BY c.user_id
                                          ORDER BY c.priority DESC, c.turn, c.run_at, c.id) AS nth
                FROM (SELECT id, priority, turn, run_at, user_id FROM {job} AS c
                      WHERE status = 'pending' AND type = allowed.type AND run_at <= now()
                        AND (%(queues)b::text[] IS NULL OR queue = ANY(%(queues)b::text[]))
                        AND CASE WHEN EXISTS (SELECT 1 FROM {queue_pauses})
                                 THEN queue <> ALL(ARRAY(SELECT queue FROM {queue_pauses}))
                                 ELSE true END
                        AND (c.user_id IS NULL
                             OR c.user_id <> ALL(ARRAY(SELECT b.user_id FROM busy AS b
                                                       WHERE b.type = allowed.type
                                                         AND b.running >= allowed.per_user)))
                        AND (c.user_id IS NULL OR NOT (c.user_id = ANY(allowed.held) OR (
                                 allowed.hold_all AND c.user_id <> ALL(allowed.exempt))))
                      ORDER BY priority DESC, turn, run_at, id
                      LIMIT 4 * allowed.free) AS c
            ) AS ranked
            LEFT JOIN busy AS b ON b.type = allowed.type AND b.user_id = ranked.user_id
            WHERE ranked.user_id IS NULL OR coalesce(b.running, 0) + ranked.nth <= allowed.per_user
            ORDER BY ranked.priority DESC, ranked.turn, ranked.run_at, ranked.id
            LIMIT allowed.free))
          AND job.status = 'pending'
        ORDER BY job.priority DESC, job.turn, job.run_at, job.id
        FOR UPDATE SKIP LOCKED
    ) AS j
    WHERE allowed.free > 0 AND allowed.per_user IS NOT NULL
), picked AS (
    SELECT id FROM (
        SELECT id, priority,
               max(run_at) OVER line AS age,
               row_number() OVER line AS place
        FROM candidates
        WINDOW line AS (PARTITION BY type ORDER BY priority DESC, turn, run_at, id
                        ROWS UNBOUNDED PRECEDING)
    ) AS ranked
    ORDER BY priority DESC, age, place
    LIMIT %(limit)s
), claimed AS (
    UPDATE {job} AS job
    SET status = 'running',
        attempts = job.attempts + 1,
        max_attempts = coalesce(job.max_attempts, slot.max_attempts),
        locked_by = %(worker)s,
        locked_until = statement_timestamp() + make_interval(secs => slot.lease),
        -- The statement's time, not the transaction's: that began before the wait for the
        -- limits' row lock, and a start must not look earlier than the finish it waited for.
        started_at = statement_timestamp(),
        finished_at = NULL
    FROM slot
    -- `= ANY(ARRAY(…))` makes the update find its rows by primary key, never by a table scan.
    WHERE job.id = ANY(ARRAY(SELECT id FROM picked)) AND slot.type = job.type
    RETURNING {job_columns}
), spent AS (
    -- A rate-limited type's next start moves one interval on for each job started (in the
    -- statement's time, which `started_at` records: spacing holds in what operators read).
    UPDATE {limits} AS l
    SET next_start_at = greatest(l.next_start_at, statement_timestamp())
                        + make_interval(secs => a.rate_seconds / a.rate_count) * c.n
    FROM (SELECT type, count(*) AS n FROM claimed GROUP BY type) AS c
    JOIN allowed AS a ON a.type = c.type
    WHERE l.type = c.type AND a.rate_count IS NOT NULL
)
-- Best first: the worker starts them in this order (each type's line in order). Not joined
-- back to `picked` for its order: the planner, which cannot count a CTE's rows, would loop.
SELECT * FROM claimed ORDER BY priority DESC, turn, run_at, id

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
    RETURNING job.id, job.parent_id, job.status, job.type, u.delay, u.error, u.parked,
              job.run_at
), paused AS (
    -- Back-pressure: a job that hit its provider's rate limit pauses its type, cluster-wide,
    -- until its retry is due.
    INSERT INTO {limits} AS l (type, paused_until, pause_reason)
    SELECT type, now() + make_interval(secs => max(delay)), max(error)
    FROM done WHERE id = ANY(%(pause_ids)b::bigint[])
    GROUP BY type
    ON CONFLICT (type) DO UPDATE
    SET paused_until = greatest(l.paused_until, EXCLUDED.paused_until),
        pause_reason = EXCLUDED.pause_reason, updated_at = now()
), freed AS (
    -- A job of a type with a concurrency limit ended: wake the workers waiting for a slot.
    SELECT pg_notify({channel_literal}, '') FROM {limits} AS l
    WHERE l.type = ANY(ARRAY(SELECT DISTINCT type FROM done))
      AND coalesce(l.concurrency, l.default_concurrency, l.per_user, l.default_per_user)
          IS NOT NULL
    LIMIT 1
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
), ready AS (
    -- A parent that may run again (its last child ended, here or before it parked): wake the
    -- workers, whose last claim found nothing, or it waits for their next poll.
    SELECT pg_notify({channel_literal}, '')
    WHERE EXISTS (SELECT 1 FROM woken)
       OR EXISTS (SELECT 1 FROM done WHERE parked AND run_at <= now())
)
-- Each job, and the parent of each that ended (for job_wake_parents).
SELECT id, CASE WHEN status IN ('completed', 'failed', 'cancelled') THEN parent_id END
FROM done
-- runs `freed` and `ready` (a CTE no one reads never runs)
WHERE (SELECT count(*) FROM freed) >= 0 AND (SELECT count(*) FROM ready) >= 0

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
    RETURNING job.id, job.parent_id, job.type
), freed AS (
    -- As in job_finish_many: a job of a type with a concurrency limit ended.
    SELECT pg_notify({channel_literal}, '') FROM {limits} AS l
    WHERE l.type = ANY(ARRAY(SELECT DISTINCT type FROM done))
      AND coalesce(l.concurrency, l.default_concurrency, l.per_user, l.default_per_user)
          IS NOT NULL
    LIMIT 1
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
), ready AS (
    -- As in job_finish_many: a parent may run again.
    SELECT pg_notify({channel_literal}, '') WHERE EXISTS (SELECT 1 FROM woken)
)
SELECT id, parent_id FROM done
-- runs `freed` and `ready` (a CTE no one reads never runs)
WHERE (SELECT count(*) FROM freed) >= 0 AND (SELECT count(*) FROM ready) >= 0

-- job_wake_parents --
-- Once a batch of outcomes has committed, in a snapshot of its own: wake (run now, and notify)
-- each of `ids` (parents parked by the batch, parents of the jobs it ended) that waits for
-- children of which none is left. The batch's own wake-up cannot see a batch written at the
-- same time (this worker's parallel writes, another worker's): a parent parked in one and its
-- last child ended in the other each see the other still running, and the parent would sleep
-- until its recheck. Whichever of the two commits last sees both here.
WITH woken AS (
    UPDATE {job} AS parent
    SET run_at = now()
    WHERE parent.id = ANY(%(ids)s::bigint[])
      AND parent.status = 'pending' AND parent.run_at > now()
      AND EXISTS (SELECT 1 FROM {job} AS child WHERE child.parent_id = parent.id)
      AND NOT EXISTS (
            SELECT 1 FROM {job} AS child
            WHERE child.parent_id = parent.id AND child.status IN ('pending', 'running'))
    RETURNING parent.id
)
SELECT pg_notify({channel_literal}, '') FROM (SELECT 1 FROM woken LIMIT 1) AS any_woken

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
-- Seconds until the next pending job of these types may start (null when none waits): its
-- run_at, or later when its type's rate or a back-pressure pause says so. Left out, because a
-- change or a finishing job wakes the workers: types paused by hand or at their cluster-wide
-- concurrency, jobs in paused queues, and jobs of users at their per-user limit.
WITH lim AS (
    SELECT l.type, l.paused, l.paused_until, l.next_start_at,
           coalesce(l.concurrency, l.default_concurrency) AS concurrency,
           coalesce(l.per_user, l.default_per_user) AS per_user
    FROM {limits} AS l WHERE l.type = ANY(%(types)s::text[])
), capped AS (
    SELECT r.type, r.user_id
    FROM {job} AS r JOIN lim ON lim.type = r.type AND lim.per_user IS NOT NULL
    WHERE r.status = 'running' AND r.user_id IS NOT NULL
    GROUP BY r.type, r.user_id, lim.per_user
    HAVING count(*) >= lim.per_user
), held AS (
    -- Users a budget holds back (see job_claim): their jobs are not due.
    SELECT o.user_id, o.types, false AS all_users, '{{}}'::text[] AS exempt
    FROM {over_budget} AS o
    UNION ALL
    SELECT NULL, d.types, true, ARRAY(
               SELECT own.user_id FROM {budgets} AS own
               WHERE own.user_id <> '' AND own.unit = d.unit AND own.period = d.period)
    FROM {budgets} AS d WHERE d.user_id = '' AND d.amount = 0
), due AS (
    SELECT j.type, min(j.run_at) AS run_at
    FROM {job} AS j
    WHERE j.status = 'pending' AND j.type = ANY(%(types)s::text[])
      AND NOT EXISTS (SELECT 1 FROM {queue_pauses} AS p WHERE p.queue = j.queue)
      AND NOT EXISTS (SELECT 1 FROM capped AS c WHERE c.type = j.type AND c.user_id = j.user_id)
      AND NOT EXISTS (
          SELECT 1 FROM held AS h
          WHERE j.user_id IS NOT NULL AND (h.types IS NULL OR j.type = ANY(h.types))
            AND (h.user_id = j.user_id OR (h.all_users AND j.user_id <> ALL(h.exempt))))
    GROUP BY j.type
)
SELECT extract(epoch FROM min(greatest(due.run_at, lim.next_start_at, lim.paused_until)) - now())
       AS seconds
FROM due LEFT JOIN lim ON lim.type = due.type
WHERE NOT coalesce(lim.paused OR lim.concurrency = 0, false)
  AND (lim.concurrency IS NULL OR lim.concurrency > (
          SELECT count(*) FROM {job} AS r WHERE r.status = 'running' AND r.type = due.type))

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

-- limits_declare --
-- Record the handlers' default limits, as a starting worker declares them (the latest start
-- wins); `types` without defaults lose those an earlier version declared.
WITH declared AS (
    SELECT * FROM unnest(%(types)s::text[], %(concurrency)s::int[], %(per_user)s::int[],
                         %(rate_count)s::int[], %(rate_seconds)s::float8[])
                  AS d(type, concurrency, per_user, rate_count, rate_seconds)
), cleared AS (
    UPDATE {limits} AS l
    SET default_concurrency = NULL, default_per_user = NULL, default_rate_count = NULL,
        default_rate_seconds = NULL, updated_at = now()
    WHERE l.type = ANY(%(plain)s::text[])
      AND (l.default_concurrency, l.default_per_user, l.default_rate_count) IS DISTINCT FROM
          (NULL::int, NULL::int, NULL::int)
)
INSERT INTO {limits} AS l (type, default_concurrency, default_per_user, default_rate_count,
                           default_rate_seconds)
SELECT type, concurrency, per_user, rate_count, rate_seconds FROM declared
ON CONFLICT (type) DO UPDATE
SET default_concurrency = EXCLUDED.default_concurrency,
    default_per_user = EXCLUDED.default_per_user,
    default_rate_count = EXCLUDED.default_rate_count,
    default_rate_seconds = EXCLUDED.default_rate_seconds,
    updated_at = now()
WHERE (l.default_concurrency, l.default_per_user, l.default_rate_count, l.default_rate_seconds)
      IS DISTINCT FROM (EXCLUDED.default_concurrency, EXCLUDED.default_per_user,
                        EXCLUDED.default_rate_count, EXCLUDED.default_rate_seconds)

-- limits_set --
-- Override some of a type's limits (those given); the others keep their value.
INSERT INTO {limits} AS l (type, concurrency, per_user, rate_count, rate_seconds, fair)
VALUES (%(type)s, %(concurrency)s::int, %(per_user)s::int, %(rate_count)s::int,
        %(rate_seconds)s::float8, coalesce(%(fair)s::boolean, true))
ON CONFLICT (type) DO UPDATE
SET concurrency = coalesce(EXCLUDED.concurrency, l.concurrency),
    per_user = coalesce(EXCLUDED.per_user, l.per_user),
    rate_count = coalesce(EXCLUDED.rate_count, l.rate_count),
    rate_seconds = coalesce(EXCLUDED.rate_seconds, l.rate_seconds),
    fair = coalesce(%(fair)s::boolean, l.fair),
    updated_at = now()

-- limits_clear --
-- Drop a type's overrides: its handlers' defaults apply again.
UPDATE {limits}
SET concurrency = NULL, per_user = NULL, rate_count = NULL, rate_seconds = NULL, fair = true,
    next_start_at = NULL, updated_at = now()
WHERE type = %(type)s

-- limits_forget_empty --
-- Forget a type's row once it holds nothing (no override, default or pause).
DELETE FROM {limits}
WHERE type = %(type)s AND concurrency IS NULL AND per_user IS NULL AND rate_count IS NULL
  AND fair AND NOT paused AND paused_until IS NULL AND default_concurrency IS NULL
  AND default_per_user IS NULL AND default_rate_count IS NULL

-- limits_list --
-- Every type with a limits row, with its jobs running now across the cluster.
SELECT l.*, (SELECT count(*) FROM {job} AS r WHERE r.status = 'running' AND r.type = l.type)
            AS running
FROM {limits} AS l
ORDER BY l.type

-- type_pause --
-- Pause job types by hand, cluster-wide: their jobs stay pending.
INSERT INTO {limits} AS l (type, paused, pause_reason)
SELECT unnest(%(types)s::text[]), true, %(reason)s::text
ON CONFLICT (type) DO UPDATE SET paused = true, pause_reason = EXCLUDED.pause_reason,
                                 updated_at = now()

-- type_resume --
-- Resume job types: lift a pause by hand and one from back-pressure alike.
UPDATE {limits}
SET paused = false, paused_until = NULL, pause_reason = NULL, updated_at = now()
WHERE type = ANY(%(types)s::text[])

-- queue_pause --
-- Pause queues cluster-wide: their jobs stay pending.
INSERT INTO {queue_pauses} (queue, reason)
SELECT unnest(%(queues)s::text[]), %(reason)s::text
ON CONFLICT (queue) DO UPDATE SET reason = EXCLUDED.reason

-- queue_resume --
-- Resume queues.
DELETE FROM {queue_pauses} WHERE queue = ANY(%(queues)s::text[])

-- queue_pauses_list --
-- The paused queues.
SELECT queue, reason, paused_at FROM {queue_pauses} ORDER BY queue

-- usage_add --
-- Add what jobs spent (JSON [{job_id, user_id, unit, amount}, …]) to each job's usage and to
-- its user's total for the UTC day. Not fenced: what a job spent is spent, whoever holds it.
WITH u AS (
    SELECT * FROM jsonb_to_recordset(%(entries)s::jsonb)
                  AS u(job_id bigint, user_id text, unit text, amount float8)
), per_job AS (
    SELECT job_id, unit, sum(amount) AS amount FROM u GROUP BY job_id, unit
), jobs AS (
    UPDATE {job} AS job
    SET usage = (SELECT jsonb_object_agg(unit, total) FROM (
                     SELECT unit, sum(amount) AS total FROM (
                         SELECT key AS unit, value::float8 AS amount
                         FROM jsonb_each_text(coalesce(job.usage, '{{}}'::jsonb))
                         UNION ALL
                         SELECT p.unit, p.amount FROM per_job AS p WHERE p.job_id = job.id
                     ) AS x GROUP BY unit
                 ) AS y)
    WHERE job.id = ANY(ARRAY(SELECT DISTINCT job_id FROM per_job))
)
INSERT INTO {usage} AS s (user_id, day, unit, amount)
SELECT user_id, (now() AT TIME ZONE 'UTC')::date, unit, sum(amount)
FROM u WHERE user_id IS NOT NULL
GROUP BY user_id, unit
ON CONFLICT (user_id, day, unit) DO UPDATE SET amount = s.amount + EXCLUDED.amount

-- usage_totals --
-- Users' totals by UTC day and unit, the last `days` days (one user, or all).
SELECT user_id, to_char(day, 'YYYY-MM-DD') AS day, unit, amount FROM {usage}
WHERE (%(user_id)s::text IS NULL OR user_id = %(user_id)s::text)
  AND day > (now() AT TIME ZONE 'UTC')::date - %(days)s::int
ORDER BY user_id, day DESC, unit

-- budget_set --
-- Add or change a budget (user '' is the default).
INSERT INTO {budgets} AS b (user_id, unit, period, amount, types)
VALUES (%(user_id)s, %(unit)s, %(period)s, %(amount)s, %(types)s::text[])
ON CONFLICT (user_id, unit, period) DO UPDATE
SET amount = EXCLUDED.amount, types = EXCLUDED.types, updated_at = now()

-- budget_remove --
-- Remove a budget; returns it when there was one.
DELETE FROM {budgets} WHERE user_id = %(user_id)s AND unit = %(unit)s AND period = %(period)s
RETURNING user_id

-- budgets_list --
-- Every budget, with what its user spent in its period (null for a default budget).
SELECT b.user_id, b.unit, b.period, b.amount, b.types,
       CASE WHEN b.user_id <> '' THEN coalesce((
           SELECT sum(u.amount) FROM {usage} AS u
           WHERE u.user_id = b.user_id AND u.unit = b.unit
             AND u.day >= CASE b.period
                 WHEN 'daily' THEN (now() AT TIME ZONE 'UTC')::date
                 ELSE date_trunc('month', now() AT TIME ZONE 'UTC')::date END), 0) END AS spent
FROM {budgets} AS b
ORDER BY b.user_id, b.unit, b.period

-- budget_holds --
-- Who a budget holds back now (one user, or all): the users over a budget, and those a default
-- of 0 holds (every user with jobs pending and no budget of their own for that unit and period).
SELECT user_id, unit, period, amount, types, by_default, spent FROM {over_budget}
WHERE %(user_id)s::text IS NULL OR user_id = %(user_id)s::text
UNION ALL
SELECT u.user_id, d.unit, d.period, d.amount, d.types, true, 0
FROM {budgets} AS d
CROSS JOIN (SELECT DISTINCT user_id FROM {job}
            WHERE status = 'pending' AND user_id IS NOT NULL
              AND (%(user_id)s::text IS NULL OR user_id = %(user_id)s::text)) AS u
WHERE d.user_id = '' AND d.amount = 0
  AND NOT EXISTS (SELECT 1 FROM {budgets} AS own
                  WHERE own.user_id = u.user_id AND own.unit = d.unit AND own.period = d.period)
  AND NOT EXISTS (SELECT 1 FROM {over_budget} AS o  -- listed above already
                  WHERE o.user_id = u.user_id AND o.unit = d.unit AND o.period = d.period)
ORDER BY 1, 2, 3

-- schedules_declare --
-- A plugin's schedules, as a starting worker declares them; rows of another origin (the CLI's,
-- another plugin's) are left as they are.
INSERT INTO {schedules} AS s (name, type, payload, queue, priority, cron, every, tz, missed,
                              origin)
SELECT d.name, d.type, d.payload, d.queue, d.priority, d.cron, d.every, d.tz, d.missed,
       %(origin)s
FROM jsonb_to_recordset(%(schedules)s::jsonb)
     AS d(name text, type text, payload jsonb, queue text, priority int, cron text,
          every float8, tz text, missed text)
ON CONFLICT (name) DO UPDATE
SET type = EXCLUDED.type, payload = EXCLUDED.payload, queue = EXCLUDED.queue,
    priority = EXCLUDED.priority, cron = EXCLUDED.cron, every = EXCLUDED.every,
    tz = EXCLUDED.tz, missed = EXCLUDED.missed, updated_at = now(),
    next_run_at = CASE WHEN (s.cron, s.every, s.tz) IS DISTINCT FROM
                            (EXCLUDED.cron, EXCLUDED.every, EXCLUDED.tz)
                       THEN NULL ELSE s.next_run_at END
WHERE s.origin = EXCLUDED.origin

-- schedules_forget --
-- A plugin's schedules it no longer declares.
DELETE FROM {schedules} WHERE origin = %(origin)s AND name <> ALL(%(names)s::text[])

-- schedule_add --
-- Add a schedule from the CLI; returns nothing when the name is taken.
INSERT INTO {schedules} (name, type, payload, queue, priority, cron, every, tz, missed, origin)
VALUES (%(name)s, %(type)s, %(payload)s::jsonb, %(queue)s, %(priority)s, %(cron)s::text,
        %(every)s::float8, %(tz)s, %(missed)s, 'cli')
ON CONFLICT (name) DO NOTHING
RETURNING name

-- schedule_remove --
-- Remove a schedule.
DELETE FROM {schedules} WHERE name = %(name)s RETURNING name

-- schedule_pause --
-- Pause or resume a schedule; a resumed one goes on from its next tick (the ticks it missed
-- while paused are not enqueued).
UPDATE {schedules}
SET paused = %(paused)s, updated_at = now(),
    next_run_at = CASE WHEN %(paused)s THEN next_run_at END
WHERE name = %(name)s
RETURNING name

-- schedules_list --
-- Every schedule, with its next and last run.
SELECT * FROM {schedules} ORDER BY name

-- schedules_due --
-- The schedules due now (or new), locked for this transaction; others skip them. With the
-- database's clock, which every worker shares.
SELECT *, now() AS db_now FROM {schedules}
WHERE NOT paused AND (next_run_at IS NULL OR next_run_at <= now())
ORDER BY name
FOR UPDATE SKIP LOCKED

-- schedule_ticked --
-- A due schedule's tick is done: its next tick, and its last run when it enqueued one.
UPDATE {schedules}
SET next_run_at = %(next_run_at)s,
    last_run_at = coalesce(%(ran_at)s::timestamptz, last_run_at),
    last_job_id = coalesce(%(job_id)s::bigint, last_job_id)
WHERE name = %(name)s

-- schedules_next --
-- Seconds until the next tick of any schedule (null: none).
SELECT extract(epoch FROM min(next_run_at) - now()) AS seconds FROM {schedules} WHERE NOT paused

-- === dashboard ===

-- dashboard_overview --
-- The overview's live counts in one statement: the database's clock; pending and running jobs
-- by type and queue (each half through its partial index), with the age of the oldest runnable
-- pending job; and jobs finished by minute, type, queue and status, read through the finished
-- index by finished_at: those since `since`, and, when `older_from` and `older_to` are given,
-- the newest whole minutes of [older_from, older_to) that hold about `budget` jobs (at least one
-- minute: the (budget+1)-th newest job's minute is where it stops). The 'older' row says where.
WITH older AS (
    SELECT greatest(
               %(older_from)s::float8,
               least(%(older_to)s::float8 - 60,
                     coalesce(floor(extract(epoch FROM (
                         SELECT finished_at FROM {job}
                         WHERE status IN ('completed', 'failed', 'cancelled')
                           AND finished_at >= to_timestamp(%(older_from)s::float8)
                           AND finished_at < to_timestamp(%(older_to)s::float8)
                         ORDER BY finished_at DESC
                         OFFSET %(budget)s LIMIT 1)) / 60) * 60 + 60,
                         %(older_from)s::float8))) AS low,
           %(older_to)s::float8 AS high
    WHERE %(older_to)s::float8 IS NOT NULL
), ranges AS (
    SELECT %(since)s::float8 AS low, 1e12::float8 AS high
    UNION ALL
    SELECT low, high FROM older
)
SELECT 'clock' AS part, NULL::text AS type, NULL::text AS queue, NULL::text AS status,
       0::bigint AS count, extract(epoch FROM now())::float8 AS value,
       (SELECT low FROM older) AS minute
UNION ALL
SELECT 'active', type, queue, 'pending', count(*),
       extract(epoch FROM now() - min(run_at) FILTER (WHERE run_at <= now()))::float8, NULL
FROM {job} WHERE status = 'pending' GROUP BY type, queue
UNION ALL
SELECT 'active', type, queue, 'running', count(*), NULL, NULL
FROM {job} WHERE status = 'running' GROUP BY type, queue
UNION ALL
SELECT 'finished', j.type, j.queue, j.status, count(*), NULL,
       floor(extract(epoch FROM j.finished_at) / 60) * 60
FROM ranges AS r
JOIN {job} AS j
  ON j.finished_at >= to_timestamp(r.low) AND j.finished_at < to_timestamp(r.high)
WHERE j.status IN ('completed', 'failed', 'cancelled')
GROUP BY j.type, j.queue, j.status, floor(extract(epoch FROM j.finished_at) / 60)

-- job_id_range --
-- The lowest and highest job ids (both ends of the primary key).
SELECT min(id) AS low, max(id) AS high FROM {job}

-- job_browse --
-- A page of jobs matching the filters (null: any), newest first, without payload, result and
-- checkpoint. Only ids in [low, before) are read: a filter that matches few rows costs at most
-- the window's rows of the primary key, whatever the table holds.
SELECT id, type, queue, user_id, parent_id, status, priority, error, progress,
       progress_message, attempts, max_attempts, run_at, created_at, started_at, finished_at,
       locked_by, locked_until, cancel_requested
FROM {job}
WHERE id < %(before)s AND id >= %(low)s
  AND (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s::text[]))
  AND (%(type)s::text IS NULL OR type = %(type)s::text)
  AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(user_id)s::text IS NULL OR user_id = %(user_id)s::text)
  AND (%(parent_id)s::bigint IS NULL OR parent_id = %(parent_id)s::bigint)
  AND (%(error)s::text IS NULL OR strpos(lower(error), lower(%(error)s::text)) > 0)
ORDER BY id DESC
LIMIT %(limit)s

-- job_count_matching --
-- How many jobs up to `max_id` match the filters, counting no further than `cap` rows.
SELECT count(*) AS count FROM (
    SELECT 1 FROM {job}
    WHERE id <= %(max_id)s
      AND (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s::text[]))
      AND (%(type)s::text IS NULL OR type = %(type)s::text)
      AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
      AND (%(user_id)s::text IS NULL OR user_id = %(user_id)s::text)
      AND (%(parent_id)s::bigint IS NULL OR parent_id = %(parent_id)s::bigint)
      AND (%(error)s::text IS NULL OR strpos(lower(error), lower(%(error)s::text)) > 0)
    LIMIT %(cap)s
) AS matched

-- job_ids_matching --
-- The ids of the newest `limit` jobs up to `max_id` that match the filters (a bulk action's).
SELECT id FROM {job}
WHERE id <= %(max_id)s
  AND (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s::text[]))
  AND (%(type)s::text IS NULL OR type = %(type)s::text)
  AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(user_id)s::text IS NULL OR user_id = %(user_id)s::text)
  AND (%(parent_id)s::bigint IS NULL OR parent_id = %(parent_id)s::bigint)
  AND (%(error)s::text IS NULL OR strpos(lower(error), lower(%(error)s::text)) > 0)
ORDER BY id DESC
LIMIT %(limit)s

-- job_family --
-- A job with its ancestors (up to 50 levels) and up to `limit` descendants (20 levels deep),
-- without payload, result and checkpoint; the depth bounds keep a hand-made cycle finite.
WITH RECURSIVE up AS (
    SELECT id, parent_id, 0 AS depth FROM {job} WHERE id = %(id)s
    UNION ALL
    SELECT j.id, j.parent_id, up.depth + 1
    FROM {job} AS j JOIN up ON j.id = up.parent_id
    WHERE up.depth < 50
), down AS (
    SELECT id, 0 AS depth FROM {job} WHERE id = %(id)s
    UNION ALL
    SELECT j.id, down.depth + 1
    FROM {job} AS j JOIN down ON j.parent_id = down.id
    WHERE down.depth < 20 AND j.parent_id IS NOT NULL
)
SELECT id, type, queue, user_id, parent_id, status, priority, error, progress,
       progress_message, attempts, max_attempts, run_at, created_at, started_at, finished_at,
       locked_by, locked_until, cancel_requested
FROM {job}
WHERE id IN (SELECT id FROM up UNION SELECT id FROM (SELECT id FROM down LIMIT %(limit)s) AS d)
ORDER BY id

-- job_retry_many --
-- job_retry for many jobs: finished ones go back to the queue with fresh attempts.
UPDATE {job}
SET status = 'pending', attempts = 0, run_at = now(), finished_at = NULL, result = NULL,
    cancel_requested = false, progress = NULL, progress_message = NULL
WHERE id = ANY(%(ids)s::bigint[]) AND status IN ('failed', 'cancelled', 'completed')
RETURNING id

-- job_cancel_many --
-- job_cancel for many jobs: pending ones are cancelled, running ones asked to stop.
UPDATE {job}
SET status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE status END,
    finished_at = CASE WHEN status = 'pending' THEN now() ELSE finished_at END,
    cancel_requested = cancel_requested OR status = 'running'
WHERE id = ANY(%(ids)s::bigint[]) AND status IN ('pending', 'running')
RETURNING id, type, status, cancel_requested

-- job_run_now_many --
-- Make pending jobs runnable at once (a retry's backoff, a delay or a parent's wait is cut).
UPDATE {job} SET run_at = least(run_at, now())
WHERE id = ANY(%(ids)s::bigint[]) AND status = 'pending'
RETURNING id

-- job_delete_many --
-- Delete finished jobs; pending and running ones are left (cancel them first).
DELETE FROM {job}
WHERE id = ANY(%(ids)s::bigint[]) AND status IN ('completed', 'failed', 'cancelled')
RETURNING id
