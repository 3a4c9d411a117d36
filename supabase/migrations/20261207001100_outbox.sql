-- Notifications: an outbox of the outcomes the product's users must hear about, written in
-- the same statement that applies each outcome, so an event exists exactly when its outcome
-- was applied (a fenced-out write makes none) and is never lost. Idempotent, add-only.
--
-- public.publisher_events, one row per event:
--   id          bigint, in the order events were written
--   webhook_id  the webhook-id of every delivery attempt: a uuid given at the first one
--               (gen_random_uuid per row costs the outcome write more than the row itself)
--   type        post.published | post.failed | post.needs_review | post.expired |
--               account.needs_reauth | post.preflight_problem
--   post_id, account_id, user_id (the owner, copied from the post or account: owner-only
--               RLS reads no other table)
--   platform, status, reason, platform_post_id, url
--               the event's facts as plain columns (the post's or account's platform and
--               status, the reason given, the post on the platform): copied, not built,
--               so the outcome write stays cheap (building a jsonb per event cost
--               record_outcomes about as much as the rest of the event row)
--   payload     facts only some events have (post.preflight_problem: scheduled_at and
--               the preflight record); '{}' otherwise. Never a token. The event's time is
--               created_at (for post.published, the post's published_at); a webhook's
--               data is the columns above with post_id and account_id, and the payload.
--   delivery (webhooks, publisher.webhooks): delivered_at, attempts, next_attempt_at,
--               locked_by, last_error. next_attempt_at null: given up (see finish_events).
-- The product's UI reads its users' events through Supabase Realtime (owner-only RLS,
-- like the posts); an operator's WEBHOOK_URL gets them signed per Standard Webhooks.
--
-- Who writes which event, each in its own statement (no statement added anywhere):
--   record_outcomes (so sync_posts): post.published, post.failed, post.needs_review (not
--     again for a post already under review: a reconcile check that still cannot tell is no
--     news), account.needs_reauth when an outcome moves the account there;
--   prepare_due_posts: post.expired, post.failed (no time, unknown platform, out of
--     attempts), post.needs_review (a claim that lapsed after sending; not for a lapsed
--     review hold, which was under review already); it also deletes events older than
--     30 days, at most 5,000 per run;
--   apply_resolved_schedules: post.failed (unresolvable local time), post.expired;
--   record_preflight (20261207001200_preflight.sql): post.preflight_problem.
-- The definitions below are those of 20261207000100_housekeeping.sql and
-- 20261130000300_claim_speed.sql with the events added; search_path fixed (see
-- 20261207000300_adopt.sql).

-- The owner's type: that of created_content.user_id (uuid on Supabase: auth.users.id; the
-- product's own table may differ), so copying it never needs a cast.
do $$
begin
  if to_regtype('public.publisher_owner_id') is null then
    execute format('create domain public.publisher_owner_id as %s',
                   coalesce((select format_type(a.atttypid, a.atttypmod) from pg_attribute a
                              where a.attrelid = 'public.created_content'::regclass
                                and a.attname = 'user_id' and not a.attisdropped), 'uuid'));
  end if;
end
$$;

create table if not exists public.publisher_events (
  id bigint generated always as identity primary key,
  webhook_id uuid,
  type text not null,
  post_id public.publisher_post_id,
  account_id uuid,
  user_id public.publisher_owner_id,
  platform text,
  status text,
  reason text,
  platform_post_id text,
  url text,
  payload jsonb not null default '{}',
  created_at timestamptz not null default now(),
  delivered_at timestamptz,
  attempts integer not null default 0,
  next_attempt_at timestamptz default now(),
  locked_by text,
  last_error text
);

-- What claim_events reads: the undelivered events, by when they are due.
create index if not exists publisher_events_due
  on public.publisher_events (next_attempt_at) where delivered_at is null;

-- Access: service_role writes; an end user (authenticated) reads their own events, the
-- event columns only (the delivery columns are the operator's); anon nothing. The owner
-- expression as 20261207000500_owner_access.sql fixes it: auth.uid() where it exists, the
-- request's sub claim otherwise. Where the owner is not a uuid, no end user reads events.
do $$
declare
  v_owner constant text := case
    when to_regprocedure('auth.uid()') is not null then '(select auth.uid())'
    else '(select (nullif(coalesce(nullif(pg_catalog.current_setting(''request.jwt.claim.sub'', '
         'true), ''''), nullif(pg_catalog.current_setting(''request.jwt.claims'', true), '''')'
         '::jsonb ->> ''sub''), ''''))::uuid)'
  end;
begin
  alter table public.publisher_events enable row level security;
  revoke all on public.publisher_events from public, anon, authenticated;
  grant all on public.publisher_events to service_role;
  -- its id sequence too (Supabase's default privileges grant it to anon)
  execute format('revoke all on sequence %s from public, anon, authenticated',
                 pg_catalog.pg_get_serial_sequence('public.publisher_events', 'id'));
  execute format('grant usage, select on sequence %s to service_role',
                 pg_catalog.pg_get_serial_sequence('public.publisher_events', 'id'));
  drop policy if exists publisher_owner_select on public.publisher_events;
  if (select t.typbasetype from pg_catalog.pg_type t
       where t.oid = 'public.publisher_owner_id'::regtype) = 'uuid'::regtype then
    grant select (id, type, post_id, account_id, user_id, platform, status, reason,
                  platform_post_id, url, payload, created_at)
      on public.publisher_events to authenticated;
    execute format('create policy publisher_owner_select on public.publisher_events '
                   'for select to authenticated using (user_id = %s)', v_owner);
  else
    raise notice 'created_content.user_id is not a uuid: end users read no publisher_events';
  end if;

  -- Realtime: the product's UI hears its users' events as they are written (Realtime
  -- applies the policy above to each). Only where Supabase's publication exists and does
  -- not already publish every table.
  if exists (select 1 from pg_publication
              where pubname = 'supabase_realtime' and not puballtables)
     and not exists (select 1 from pg_publication_tables
                      where pubname = 'supabase_realtime' and schemaname = 'public'
                        and tablename = 'publisher_events') then
    alter publication supabase_realtime add table public.publisher_events;
  end if;
end
$$;

-- Writes a batch of outcomes in one statement, fenced by worker and attempt, and one
-- attempt-log row per outcome (applied=false where the claim had been lost), and the
-- events of the applied ones.
-- p_outcomes: [{"id", "attempt", "status", "outcome", "error", "platform_post_id",
--               "platform_url", "delay_seconds", "refund_attempt", "detail",
--               "account_id", "account_status", "state"}]; a key left out is null.
create or replace function public.record_outcomes(p_worker text, p_outcomes jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_result jsonb;
begin
  with o as (
    select * from jsonb_to_recordset(p_outcomes) as x(
      id public.publisher_post_id, attempt integer, status text, outcome text, error text,
      platform_post_id text, platform_url text, delay_seconds double precision,
      refund_attempt boolean, detail jsonb, account_id uuid, account_status text,
      state jsonb)
  ), updated as (
    update public.created_content c
       set status = o.status,
           platform_post_id = coalesce(o.platform_post_id, c.platform_post_id),
           platform_url = coalesce(o.platform_url, c.platform_url),
           published_at = case when o.status = 'published' then now() else c.published_at end,
           not_before = case when o.delay_seconds is null then c.not_before
                             else now() + make_interval(secs => o.delay_seconds) end,
           attempts = c.attempts - case when coalesce(o.refund_attempt, false) then 1 else 0 end,
           last_error = o.error,
           -- coalesce: a product's own god_mode_metadata may allow null
           god_mode_metadata = case
             when o.error is null then c.god_mode_metadata - 'publish_error'
             else coalesce(c.god_mode_metadata, '{}')
                  || jsonb_build_object('publish_error', o.error) end,
           sending_started_at = case when o.status = 'needs_review' then c.sending_started_at end,
           publish_state = c.publish_state || coalesce(o.state, '{}'),
           locked_by = null,
           lease_expires_at = null,
           updated_at = now()
      from o
     where c.id = o.id and c.attempts = o.attempt
       and case when c.status = 'publishing' then c.locked_by end = p_worker  -- see the fence note in 20261130000300
    returning c.id, c.user_id, c.account_id, c.platform, c.status, c.last_error,
              c.platform_post_id, c.platform_url,
              -- needs_review again after a review check (claim_for_review stamped
              -- review_checked_at after the post's "sending"; a new send restamps it)
              coalesce(c.review_checked_at > c.sending_started_at, false) as rechecked
  ), accounts as (
    update public.social_accounts a
       set status = o.account_status, status_reason = o.error, updated_at = now()
      from o
     where a.id = o.account_id and o.account_status is not null
       and a.status is distinct from o.account_status
       and o.id in (select id from updated)   -- a fenced-out write changes nothing
    returning a.id, a.user_id, a.platform, a.status, a.status_reason
  ), released_quota as (
    -- Only a post that went out (or may have) keeps its quota slot.
    delete from public.quota_reservations r
     using o
     where r.post_id = o.id and r.attempt = o.attempt
       and o.status not in ('published', 'needs_review')
       and o.id in (select id from updated)
    returning 1
  ), logged as (
    insert into public.publish_attempts
      (post_id, worker_id, attempt, outcome, status, applied, error, platform_post_id, detail)
    select o.id, p_worker, o.attempt, o.outcome, o.status,
           o.id in (select id from updated), o.error, o.platform_post_id, o.detail
      from o
    returning 1
  ), evented as (
    insert into public.publisher_events
      (type, post_id, account_id, user_id, platform, status, reason, platform_post_id, url)
    select 'post.' || u.status, u.id, u.account_id, u.user_id, u.platform, u.status,
           u.last_error, u.platform_post_id, u.platform_url
      from updated u
     where u.status in ('published', 'failed', 'needs_review')
       and not (u.status = 'needs_review' and u.rechecked)
    union all
    select 'account.needs_reauth', null, a.id, a.user_id::text::public.publisher_owner_id,
           a.platform, a.status, a.status_reason, null, null
      from accounts a
     where a.status = 'needs_reauth'
    returning 1
  )
  select jsonb_build_object(
    'applied', (select count(*) from updated),
    'logged', (select count(*) from logged),
    'accounts', (select count(*) from accounts),
    'events', (select count(*) from evented),
    'lost', coalesce((select jsonb_agg(o.id) from o where o.id not in (select id from updated)),
                     '[]'))
    into v_result;
  return v_result;
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
                when c.attempts >= c.max_attempts
                  then 'out_of_attempts'
                else 'unknown_platform'
              end as kind
     ) k
     where c.status in ('scheduled', 'retrying')
       and ((c.scheduled_at is null and (c.scheduled_local is null or c.status = 'retrying'))
            or c.scheduled_at < h.too_old
            or c.attempts >= c.max_attempts  -- never claimable again (claim_due_posts skips it)
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
    returning c.id, w.kind, c.user_id, c.account_id, c.platform, c.status, c.last_error,
              c.platform_post_id, c.platform_url
  ), leased as (
    -- Claims no worker will finish: the lease lapsed, or the row could never have come
    -- from a claim (no lease, no holder, a lease longer than LEASE_SECONDS allows).
    select c.id, q.requeue, q.review_hold,
           coalesce(c.lease_expires_at < now(), false) as lapsed,
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
       -- a review hold: claim_for_review stamps review_checked_at and updated_at with the
       -- same now(), and a post under review may be live: never requeued
       select coalesce(c.review_checked_at >= c.updated_at, false) as review_hold
     ) r
     cross join lateral (
       select c.sending_started_at is null and not r.review_hold as requeue, r.review_hold,
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
           attempts = case when l.requeue then greatest(c.attempts, 1) - 1 else c.attempts end,
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
    returning c.id, c.status, l.lapsed, l.review_hold, c.user_id, c.account_id, c.platform,
              c.last_error, c.platform_post_id, c.platform_url
  ), released_quota as (
    delete from public.quota_reservations r
     using released
     where r.post_id = released.id and released.status = 'scheduled'
    returning 1
  ), pruned_quota as (
    delete from public.quota_reservations r
     where r.reserved_at < now() - interval '8 days'
    returning 1
  ), evented as (
    insert into public.publisher_events
      (type, post_id, account_id, user_id, platform, status, reason, platform_post_id, url)
    select 'post.' || e.status, e.id, e.account_id, e.user_id, e.platform, e.status,
           e.last_error, e.platform_post_id, e.platform_url
      from (select m.id, m.status, m.user_id, m.account_id, m.platform, m.last_error,
                   m.platform_post_id, m.platform_url
              from moved m where m.kind <> 'to_resolve'
            union all
            select r.id, r.status, r.user_id, r.account_id, r.platform, r.last_error,
                   r.platform_post_id, r.platform_url
              from released r where r.status = 'needs_review' and not r.review_hold) e
    returning 1
  ), oldest_event as (
    select x.created_at < now() - interval '30 days' as old
      from public.publisher_events x order by x.id limit 1
  ), pruned_events as (
    -- Retention: events are for hearing about outcomes as they happen; the posts and the
    -- attempt log keep the history. Ids follow time, so the oldest are first by the key,
    -- and one probe tells when there is nothing to do.
    delete from public.publisher_events e
     where e.id = any (array(select x.id from public.publisher_events x
                              where (select o.old from oldest_event o)
                              order by x.id limit 5000))
       and e.created_at < now() - interval '30 days'
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
    returning c.id, c.user_id, c.account_id, c.platform, c.status, c.last_error,
              c.platform_post_id, c.platform_url
  ), evented as (
    insert into public.publisher_events
      (type, post_id, account_id, user_id, platform, status, reason, platform_post_id, url)
    select 'post.' || u.status, u.id, u.account_id, u.user_id, u.platform, u.status,
           u.last_error, u.platform_post_id, u.platform_url
      from updated u
     where u.status in ('failed', 'expired')
    returning 1
  )
  select count(*)::integer from updated;
$$;

-- Webhook delivery (publisher.webhooks): takes up to p_limit undelivered events that are
-- due, oldest due first, and leases them to p_worker for p_lease_seconds (next_attempt_at
-- moves to the lease's end, so no other deliverer takes them meanwhile; a deliverer that
-- dies leaves them due again then). Each claim is an attempt. Events older than the 3 days
-- of retries that were never sent (no WEBHOOK_URL then) are given up here, not sent late.
-- Returns [{"id", "webhook_id" (given on the first claim, then kept), "type", "created_at",
--           "data", "attempt"}]; data: post_id, account_id, platform, status, reason, for a
-- post's outcome platform_post_id and url too, and the payload's keys.
create or replace function public.claim_events(p_worker text, p_limit integer,
                                               p_lease_seconds double precision)
returns jsonb
language sql
set search_path = ''
as $$
  with due as (
    select e.id, e.created_at < now() - interval '3 days' as stale
      from public.publisher_events e
     where e.delivered_at is null and e.next_attempt_at <= now()
     order by e.next_attempt_at
     limit greatest(p_limit, 0)
       for update skip locked
  ), stale as (
    update public.publisher_events e
       set next_attempt_at = null,
           last_error = coalesce(e.last_error || ' ', '')
                        || '[not sent: older than the 3 days webhooks are retried for]'
      from due d
     where e.id = d.id and d.stale
    returning 1
  ), leased as (
    update public.publisher_events e
       set next_attempt_at = now() + make_interval(secs => p_lease_seconds),
           locked_by = p_worker,
           attempts = e.attempts + 1,
           webhook_id = coalesce(e.webhook_id, gen_random_uuid())
      from due d
     where e.id = d.id and not d.stale
    returning e.id, e.webhook_id, e.type, e.created_at, e.post_id, e.account_id,
              e.platform, e.status, e.reason, e.platform_post_id, e.url, e.payload, e.attempts
  )
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', l.id, 'webhook_id', l.webhook_id, 'type', l.type,
           'created_at', l.created_at,
           'data', jsonb_build_object('post_id', l.post_id, 'account_id', l.account_id,
                                      'platform', l.platform, 'status', l.status,
                                      'reason', l.reason)
                   || case when l.type like 'account.%' or l.type = 'post.preflight_problem'
                           then '{}'
                           else jsonb_build_object('platform_post_id', l.platform_post_id,
                                                   'url', l.url) end
                   || l.payload,
           'attempt', l.attempts) order by l.id), '[]')
    from leased l;
$$;

-- What became of claimed events. p_results: [{"id", "attempt", "error", "retry_after"}]:
-- no error: delivered (whichever attempt: it reached the endpoint). An error: the next
-- attempt after 30 s * 2^(attempt-1) (with up to a quarter of jitter off, at least
-- retry_after when the endpoint asked, at most 6 h), fenced by the attempt (a later claim
-- of the event decides); past 3 days since the event, given up (next_attempt_at null),
-- the last error kept. Returns {"delivered", "retrying", "given_up"}.
create or replace function public.finish_events(p_results jsonb)
returns jsonb
language sql
set search_path = ''
as $$
  with r as (
    select * from jsonb_to_recordset(p_results)
      as x(id bigint, attempt integer, error text, retry_after double precision)
  ), finished as (
    update public.publisher_events e
       set delivered_at = case when r.error is null then now() end,
           locked_by = null,
           last_error = r.error,
           next_attempt_at = case
             when r.error is null then e.next_attempt_at
             when e.created_at < now() - interval '3 days' then null
             else now() + make_interval(secs => greatest(
                    least(30 * power(2, least(greatest(r.attempt, 1) - 1, 20)), 21600)
                      * (0.75 + random() / 4),
                    least(coalesce(r.retry_after, 0), 21600)))
           end
      from r
     where e.id = r.id and e.delivered_at is null
       and (r.error is null or e.attempts = r.attempt)
    returning e.delivered_at is not null as delivered, e.next_attempt_at is null as given_up
  )
  select jsonb_build_object(
    'delivered', (select count(*) from finished where delivered),
    'retrying', (select count(*) from finished where not delivered and not given_up),
    'given_up', (select count(*) from finished where not delivered and given_up));
$$;

revoke all on function public.record_outcomes(text, jsonb),
  public.prepare_due_posts(double precision, text[]),
  public.apply_resolved_schedules(jsonb),
  public.claim_events(text, integer, double precision),
  public.finish_events(jsonb)
  from public, anon, authenticated;
grant execute on function public.record_outcomes(text, jsonb),
  public.prepare_due_posts(double precision, text[]),
  public.apply_resolved_schedules(jsonb),
  public.claim_events(text, integer, double precision),
  public.finish_events(jsonb)
  to service_role;

notify pgrst, 'reload schema';
