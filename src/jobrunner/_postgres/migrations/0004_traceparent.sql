-- The W3C trace context (`traceparent`) of whatever enqueued the job, so the worker's span for
-- each attempt continues that trace. Nullable, no default: adding it rewrites no rows.
ALTER TABLE {job} ADD COLUMN traceparent text;
