-- Housekeeping that leaves no post behind, and local times that cannot be published late.
-- Idempotent (create or replace); same signatures, so callers and PostgREST see no change;
-- every name schema-qualified, search_path fixed (see 20261207000300_adopt.sql).
--
-- prepare_due_posts is still one statement per run, and now also moves every post that sits
-- in a state no step would ever move it out of, each to a state with a reason:
--  * publishing with no lease (lease_expires_at empty), no holder (locked_by empty: no
--    worker can write its outcome), or a lease longer than any claim takes (LEASE_SECONDS
--    is at most 24 h): released like a lapsed lease, back to the queue if sending never
--    started, to needs_review if it did;
--  * a review hold (claim_for_review) whose lease lapsed goes back to needs_review even
--    without a "sending" stamp: a post under review may be live, so it is never queued;
--  * scheduled or retrying with neither scheduled_at nor scheduled_local: failed, since no
--    time can ever be worked out for it;
--  * retrying without scheduled_at but with scheduled_local (resolution only reads
--    scheduled posts): back to scheduled, not_before cleared, so the next run resolves it
--    (and expires it if it is too late);
--  * retrying with attempts >= max_attempts: failed ("gave up after N attempts"), instead of
--    one attempt more than allowed.
-- Rows another transaction holds are skipped (a claim or an outcome write is moving them);
-- the next housekeeping looks again. Waiting posts are read in one pass, not one per rule.
--
-- apply_resolved_schedules expires, in the same statement, a post whose local time resolves
-- more than max_delay_hours in the past (items carry it; without it nothing expires, as
-- before): no claim, on any worker, can take a post that is already too late between the
-- resolution and the next housekeeping.

-- The post id domain (see 20261130000100_schema.sql), where an earlier 0100 ran without
-- it: `supabase db push` runs this file before 20261207000300_adopt.sql, which makes it too.
do $$
begin
  if to_regtype('public.publisher_post_id') is null then
    execute format('create domain public.publisher_post_id as %s',
                   (select format_type(a.atttypid, a.atttypmod) from pg_attribute a
                     where a.attrelid = 'public.created_content'::regclass
                       and a.attname = 'id'));
  end if;
end
$$;

create or replace function public.prepare_due_posts(
  p_max_delay_hours double precision,
  p_platforms text[]
) returns jsonb
language sql
set search_path = ''
as $$
  with horizon as (
    select now() - make_interval(secs => p_max_delay_hours * 3600) as too_old
  ), waiting as (
    -- Posts in the queue that no claim should take as they are, and why (first rule wins).
    select c.id, k.kind,
           case k.kind
             when 'unschedulable' then 'the post has neither scheduled_at nor scheduled_local'
             when 'to_resolve' then 'retrying without scheduled_at: its time is worked out '
                                    'again from scheduled_local and scheduled_timezone'
             when 'expired' then format('expired: not published within %s hours of its '
                                        'scheduled time', p_max_delay_hours)
             when 'out_of_attempts' then format('gave up after %s attempts (max_attempts is '
                                                '%s): %s', c.attempts, c.max_attempts,
                                                coalesce(c.last_error, 'no error was recorded'))
             else format('unknown platform %L: supported are %s', c.platform,
                         array_to_string(p_platforms, ', '))
           end as reason
      from public.created_content c
     cross join horizon h
     cross join lateral (
       select case
                when c.scheduled_at is null and c.scheduled_local is null then 'unschedulable'
                when c.scheduled_at is null and c.status = 'retrying' then 'to_resolve'
                when c.scheduled_at < h.too_old then 'expired'
                when c.status = 'retrying' and c.attempts >= c.max_attempts
                  then 'out_of_attempts'
                else 'unknown_platform'
              end as kind
     ) k
     where c.status in ('scheduled', 'retrying')
       and ((c.scheduled_at is null and (c.scheduled_local is null or c.status = 'retrying'))
            or c.scheduled_at < h.too_old
            or (c.status = 'retrying' and c.attempts >= c.max_attempts)
            or (c.due_at <= now() and c.platform <> all (p_platforms)))
       for update of c skip locked
  ), moved as (
    update public.created_content c
       set status = case w.kind when 'to_resolve' then 'scheduled'
                                when 'expired' then 'expired' else 'failed' end,
           not_before = case when w.kind = 'to_resolve' then null else c.not_before end,
           last_error = w.reason,
           god_mode_metadata = case when w.kind = 'to_resolve' then c.god_mode_metadata
             -- coalesce: a product's own god_mode_metadata may allow null
             else coalesce(c.god_mode_metadata, '{}')
                  || jsonb_build_object('publish_error', w.reason) end,
           updated_at = now()
      from waiting w
     where c.id = w.id
    returning c.id, w.kind
  ), leased as (
    -- Claims no worker will finish: the lease lapsed, or the row could never have come
    -- from a claim (no lease, no holder, a lease longer than LEASE_SECONDS allows).
    select c.id, q.requeue, coalesce(c.lease_expires_at < now(), false) as lapsed,
           case
             -- a lapsed claim that never sent: due again, its last error kept as it was
             when q.requeue and c.lease_expires_at < now() then c.last_error
             when q.requeue then format('released: it was publishing with %s, so no worker '
                                        'could finish it', q.what)
             when c.sending_started_at is null then
               format('outcome unknown: worker %s lost its lease while checking with the '
                      'platform whether the post is live', coalesce(c.locked_by, '(none)'))
             when c.lease_expires_at < now() then
               format('outcome unknown: worker %s lost its lease after sending started at %s',
                      c.locked_by, c.sending_started_at)
             else format('outcome unknown: it was publishing with %s after sending started '
                         'at %s', q.what, c.sending_started_at)
           end as reason
      from public.created_content c
     cross join lateral (
       select c.sending_started_at is null
              -- not a review hold: claim_for_review stamps review_checked_at and updated_at
              -- with the same now(), and a post under review may be live: never requeued
              and not coalesce(c.review_checked_at >= c.updated_at, false) as requeue,
              case when c.locked_by is null then 'no worker holding it (locked_by empty)'
                   when c.lease_expires_at is null then 'no lease (lease_expires_at empty)'
                   else format('a lease until %s, longer than any claim takes',
                               c.lease_expires_at) end as what
     ) q
     where c.status = 'publishing'
       and (c.lease_expires_at < now()
            or c.lease_expires_at is null
            or c.locked_by is null
            or c.lease_expires_at > now() + interval '25 hours')
       for update of c skip locked
  ), released as (
    update public.created_content c
       set status = case when l.requeue then 'scheduled' else 'needs_review' end,
           -- a released claim that never sent gives its attempt back
           attempts = case when l.requeue then greatest(c.attempts - 1, 0) else c.attempts end,
           last_error = l.reason,
           god_mode_metadata = case when l.requeue then c.god_mode_metadata
             -- coalesce: a product's own god_mode_metadata may allow null
             else coalesce(c.god_mode_metadata, '{}')
                  || jsonb_build_object('publish_error', l.reason) end,
           locked_by = null,
           lease_expires_at = null,
           updated_at = now()
      from leased l
     where c.id = l.id
    returning c.id, c.status, l.lapsed
  ), released_quota as (
    delete from public.quota_reservations r
     using released
     where r.post_id = released.id and released.status = 'scheduled'
    returning 1
  ), pruned_quota as (
    delete from public.quota_reservations r
     where r.reserved_at < now() - interval '8 days'
    returning 1
  )
  select jsonb_build_object(
    'expired', (select count(*) from moved where kind = 'expired'),
    'unknown_platform', (select count(*) from moved where kind = 'unknown_platform'),
    'unschedulable', (select count(*) from moved where kind = 'unschedulable'),
    'to_resolve', (select count(*) from moved where kind = 'to_resolve'),
    'out_of_attempts', (select count(*) from moved where kind = 'out_of_attempts'),
    'released', (select count(*) from released where status = 'scheduled'),
    'needs_review', (select count(*) from released where status = 'needs_review'),
    'stuck_claims', (select count(*) from released where not lapsed));
$$;

-- Writes resolved instants, or fails the posts whose time could not be resolved, and
-- expires those whose instant is already more than max_delay_hours past.
-- p_items: [{"id": 1, "scheduled_at": "2026-...Z", "max_delay_hours": 24}
--           | {"id": 2, "error": "..."}]
create or replace function public.apply_resolved_schedules(p_items jsonb)
returns integer
language sql
set search_path = ''
as $$
  with items as (
    select x.id, x.scheduled_at, x.error,
           coalesce(x.scheduled_at < now() - make_interval(secs => x.max_delay_hours * 3600),
                    false) as too_late,
           -- the same reason prepare_due_posts gives
           format('expired: not published within %s hours of its scheduled time',
                  x.max_delay_hours) as expiry
      from jsonb_to_recordset(p_items)
        as x(id public.publisher_post_id, scheduled_at timestamptz, error text,
             max_delay_hours double precision)
     where x.error is not null or x.scheduled_at is not null  -- an empty item changes nothing
  ), updated as (
    update public.created_content c
       set scheduled_at = i.scheduled_at,
           status = case when i.error is not null then 'failed'
                         when i.too_late then 'expired' else c.status end,
           last_error = case when i.error is not null then i.error
                             when i.too_late then i.expiry end,
           god_mode_metadata = case
             when i.error is not null
               then coalesce(c.god_mode_metadata, '{}')
                    || jsonb_build_object('publish_error', i.error)
             when i.too_late
               then coalesce(c.god_mode_metadata, '{}')
                    || jsonb_build_object('publish_error', i.expiry)
             else c.god_mode_metadata end,
           updated_at = now()
      from items i
     where c.id = i.id and c.status = 'scheduled' and c.scheduled_at is null
    returning c.id
  )
  select count(*)::integer from updated;
$$;

-- create or replace keeps the functions' grants; stated again so this file stands alone.
revoke all on function public.prepare_due_posts(double precision, text[]),
  public.apply_resolved_schedules(jsonb)
  from public, anon, authenticated;
grant execute on function public.prepare_due_posts(double precision, text[]),
  public.apply_resolved_schedules(jsonb) to service_role;

notify pgrst, 'reload schema';
