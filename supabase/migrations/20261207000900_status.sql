-- Monitoring: the numbers `publisher status` shows (publisher_kpis) and the alarms
-- `publisher status --check` raises (publisher_alarms). Read-only functions of the contract,
-- so the product's admin screen can call them through Supabase rpc as well. Each returns
-- one json value; service_role only; search_path fixed. Idempotent (create or replace).

-- The seed's KPIs over windows of the last p_hours hours (1 and 24 for `publisher status`),
-- all windows from one read of each source:
--  * how posts ended (published, failed, needs_review, expired), the success rate and the
--    lateness of published posts (published_at - scheduled_at, p50 / p95 / max): the posts'
--    own rows. Only they know every way a post ends: housekeeping expires posts, sends
--    lapsed claims to needs_review and gives up on posts out of attempts without writing an
--    attempt. No index covers published_at or updated_at (one would cost every outcome
--    write, the hot path), so created_content is read once, whatever the windows.
--  * outcomes per platform as runs decided them (every attempt, also the transient errors
--    that were retried and published later), their error rate, and posts per minute while
--    runs worked: the run log's summaries. Its ids grow with time, so the newest run older
--    than the widest window, found by reading the primary key backwards, bounds the rows
--    to read, however long the log.
create or replace function public.publisher_kpis(p_hours double precision[])
returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
  v_oldest timestamptz;
  v_first_run bigint;
  v_result jsonb;
begin
  if p_hours is null or cardinality(p_hours) = 0
     or exists (select 1 from unnest(p_hours) h where h is null or not h > 0 or h > 8784) then
    raise exception 'publisher_kpis: p_hours must hold windows in hours, each above 0 and '
                    'at most 8784 (a year)' using errcode = '22023';
  end if;
  v_oldest := now() - make_interval(secs => (select max(h) from unnest(p_hours) h) * 3600);
  select coalesce((select r.id from public.publisher_runs r
                    where r.finished_at < v_oldest order by r.id desc limit 1), 0)
    into v_first_run;

  with windows as materialized (
    select distinct h as hours, now() - make_interval(secs => h * 3600) as since
      from unnest(p_hours) h
  ), ended as (
    select w.hours, c.platform, c.status,
           extract(epoch from c.published_at - c.scheduled_at)::double precision as lateness
      from public.created_content c
     cross join lateral (
       select case c.status
                when 'published' then c.published_at
                -- the outcome became unknown when sending started; review checks move
                -- updated_at again later
                when 'needs_review' then coalesce(c.sending_started_at, c.updated_at)
                else c.updated_at
              end as at
     ) e
      join windows w on e.at >= w.since
     -- an outcome stamps updated_at too: the cheap filter first
     where c.updated_at >= v_oldest
       and c.status in ('published', 'failed', 'needs_review', 'expired')
  ), outcomes as (
    select e.hours, grouping(e.platform) = 1 as overall, e.platform,
           count(*) filter (where e.status = 'published') as published,
           count(*) filter (where e.status = 'failed') as failed,
           count(*) filter (where e.status = 'needs_review') as needs_review,
           count(*) filter (where e.status = 'expired') as expired,
           count(e.lateness) filter (where e.status = 'published') as late_n,
           percentile_cont(0.5) within group (order by e.lateness)
             filter (where e.status = 'published') as p50,
           percentile_cont(0.95) within group (order by e.lateness)
             filter (where e.status = 'published') as p95,
           max(e.lateness) filter (where e.status = 'published') as late_max
      from ended e
     group by grouping sets ((e.hours), (e.hours, e.platform))
  ), runs as materialized (
    select w.hours, r.summary
      from public.publisher_runs r
      join windows w on r.finished_at >= w.since
     where r.id > v_first_run and r.finished_at >= v_oldest
  ), throughput as (
    -- Posts per minute while runs worked: idle runs (nothing finished) would only dilute
    -- it with their start-up time.
    select r.hours, count(*) as runs,
           sum(n.finished) filter (where n.finished > 0) as finished,
           sum(n.wall) filter (where n.finished > 0) as wall
      from runs r
     cross join lateral (
       select case when jsonb_typeof(r.summary -> 'finished') = 'number'
                   then (r.summary ->> 'finished')::numeric end as finished,
              case when jsonb_typeof(r.summary -> 'wall_seconds') = 'number'
                   then (r.summary ->> 'wall_seconds')::numeric end as wall
     ) n
     group by r.hours
  ), decided as (
    -- by_platform: {platform: {status the outcome led to: posts}} (publisher.summary).
    -- Errors: retried (retrying), given up (failed) or unknown (needs_review); waits for a
    -- quota or throttle (scheduled) are not.
    select r.hours, grouping(p.key) = 1 as overall, p.key as platform,
           sum(s.value::numeric) as attempts,
           coalesce(sum(s.value::numeric)
                      filter (where s.key in ('retrying', 'failed', 'needs_review')), 0)
             as errors
      from runs r
     cross join lateral jsonb_each(case when jsonb_typeof(r.summary -> 'by_platform') = 'object'
                                        then r.summary -> 'by_platform' end) p
     cross join lateral jsonb_each_text(case when jsonb_typeof(p.value) = 'object'
                                             then p.value end) s
     where s.value ~ '^[0-9]{1,15}$'
     group by grouping sets ((r.hours), (r.hours, p.key))
  ), stats as (
    select coalesce(o.hours, d.hours) as hours, coalesce(o.overall, d.overall) as overall,
           coalesce(o.platform, d.platform) as platform,
           jsonb_build_object(
             'published', coalesce(o.published, 0),
             'failed', coalesce(o.failed, 0),
             'needs_review', coalesce(o.needs_review, 0),
             'expired', coalesce(o.expired, 0),
             'success_rate',
               case when coalesce(o.published + o.failed + o.needs_review, 0) > 0
                    then round(o.published::numeric
                               / (o.published + o.failed + o.needs_review), 4)
               end,
             'attempts', coalesce(d.attempts, 0),
             'errors', coalesce(d.errors, 0),
             'error_rate', case when d.attempts > 0 then round(d.errors / d.attempts, 4) end,
             'lateness_seconds', jsonb_build_object(
               'count', coalesce(o.late_n, 0),
               'p50', round(o.p50::numeric, 3),
               'p95', round(o.p95::numeric, 3),
               'max', round(o.late_max::numeric, 3))) as body
      from outcomes o
      full join decided d
        on d.hours = o.hours and d.overall = o.overall
       and d.platform is not distinct from o.platform
  )
  select jsonb_build_object(
    'at', now(),
    'windows', coalesce(jsonb_agg(
      jsonb_build_object(
        'hours', w.hours,
        'since', w.since,
        'runs', coalesce(t.runs, 0),
        'posts_per_minute', case when t.wall > 0 then round(t.finished / t.wall * 60, 1) end)
      || coalesce((select s.body from stats s where s.hours = w.hours and s.overall),
                  jsonb_build_object(
                    'published', 0, 'failed', 0, 'needs_review', 0, 'expired', 0,
                    'success_rate', null, 'attempts', 0, 'errors', 0, 'error_rate', null,
                    'lateness_seconds', jsonb_build_object('count', 0, 'p50', null,
                                                           'p95', null, 'max', null)))
      || jsonb_build_object('platforms', coalesce(
           (select jsonb_object_agg(coalesce(s.platform, '(none)'), s.body order by s.platform)
              from stats s where s.hours = w.hours and not s.overall), '{}'))
      order by w.hours), '[]'))
    into v_result
    from windows w
    left join throughput t on t.hours = w.hours;
  return v_result;
end
$$;

-- What `publisher status --check` alarms on, each with its facts and whether it fires:
--   silent        no run has finished for p_silent_minutes while posts wait that a run
--                 would take (due for over a minute, account and platform not paused). A
--                 cron run records itself every minute; `publisher worker` only when it
--                 did something, so silence alone proves nothing while nothing is due;
--   overdue       posts still queued more than p_overdue_minutes after they became due;
--   review        needs_review posts unknown for more than p_review_hours (since sending
--                 started): a person must look;
--   reauth        accounts in needs_reauth with posts due within a day: each will fail
--                 unless the user reconnects first;
--   failure_rate  of the posts that ended in the last hour (publisher_kpis, so the alarm
--                 and `publisher status` agree), the share that did not publish (failed
--                 or needs_review), judged from p_failure_min_posts posts on.
-- The queue is read through created_content_claimable, needs_review through
-- created_content_review, the accounts' posts through their account_id index.
create or replace function public.publisher_alarms(
  p_silent_minutes double precision, p_overdue_minutes double precision,
  p_review_hours double precision, p_failure_rate_percent double precision,
  p_failure_min_posts integer
) returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
  v_last_run timestamptz;
  v_queue record;
  v_review record;
  v_reauth jsonb;
  v_hour jsonb;
  v_ended bigint;
  v_unsettled bigint;
  v_percent numeric;
begin
  if p_silent_minutes is null or p_overdue_minutes is null or p_review_hours is null
     or p_failure_rate_percent is null or p_failure_min_posts is null
     or not (p_silent_minutes > 0 and p_overdue_minutes > 0 and p_review_hours > 0
             and p_failure_rate_percent between 0 and 100 and p_failure_min_posts >= 1) then
    raise exception 'publisher_alarms: minutes and hours must be above 0, the percent '
                    'between 0 and 100, the minimum posts at least 1' using errcode = '22023';
  end if;

  select r.finished_at into v_last_run
    from public.publisher_runs r order by r.id desc limit 1;

  select count(*) filter (where c.due_at < now() - make_interval(secs => p_overdue_minutes * 60))
           as overdue,
         min(c.due_at) as oldest_due,
         count(*) filter (
           where c.due_at <= now() - interval '1 minute'
             and not exists (select 1 from public.social_accounts a
                              where a.id = c.account_id and a.paused_until > now())
             and not exists (select 1 from public.platform_pauses pp
                              where pp.platform = c.platform and pp.paused_until > now()))
           as waiting
    into v_queue
    from public.created_content c
   where c.status in ('scheduled', 'retrying') and c.due_at <= now();

  select count(*) as n, min(coalesce(c.sending_started_at, c.updated_at)) as oldest
    into v_review
    from public.created_content c
   where c.status = 'needs_review'
     and coalesce(c.sending_started_at, c.updated_at)
         < now() - make_interval(secs => p_review_hours * 3600);

  -- The accounts (the first 20 by their next post), and how many accounts and posts in all.
  select jsonb_build_object(
           'accounts', count(*),
           'posts', coalesce(sum(x.posts), 0),
           'first', coalesce(jsonb_agg(jsonb_build_object(
                      'id', x.id, 'platform', x.platform, 'display_name', x.display_name,
                      'posts', x.posts, 'next_due_at', x.next_due)
                      order by x.next_due, x.id) filter (where x.rank <= 20), '[]'))
    into v_reauth
    from (select a.id, a.platform, a.display_name, count(*) as posts,
                 min(c.due_at) as next_due,
                 row_number() over (order by min(c.due_at), a.id) as rank
            from public.social_accounts a
            join public.created_content c on c.account_id = a.id
           where a.status = 'needs_reauth'
             and c.status in ('scheduled', 'retrying')
             and c.due_at < now() + interval '1 day'
           group by a.id, a.platform, a.display_name) x;

  v_hour := public.publisher_kpis(array[1.0]::double precision[]) -> 'windows' -> 0;
  v_unsettled := (v_hour ->> 'failed')::bigint + (v_hour ->> 'needs_review')::bigint;
  v_ended := v_unsettled + (v_hour ->> 'published')::bigint;
  v_percent := case when v_ended > 0 then round(100.0 * v_unsettled / v_ended, 1) end;

  return jsonb_build_object(
    'at', now(),
    'silent', jsonb_build_object(
      'firing', (v_last_run is null
                 or v_last_run < now() - make_interval(secs => p_silent_minutes * 60))
                and v_queue.waiting > 0,
      'last_run_at', v_last_run,
      'minutes', round((extract(epoch from now() - v_last_run) / 60)::numeric, 1),
      'waiting', v_queue.waiting,
      'limit_minutes', p_silent_minutes),
    'overdue', jsonb_build_object(
      'firing', v_queue.overdue > 0,
      'count', v_queue.overdue,
      'oldest_due_at', v_queue.oldest_due,
      'minutes', round((extract(epoch from now() - v_queue.oldest_due) / 60)::numeric, 1),
      'limit_minutes', p_overdue_minutes),
    'review', jsonb_build_object(
      'firing', v_review.n > 0,
      'count', v_review.n,
      'oldest_at', v_review.oldest,
      'hours', round((extract(epoch from now() - v_review.oldest) / 3600)::numeric, 1),
      'limit_hours', p_review_hours),
    'reauth', jsonb_build_object('firing', (v_reauth ->> 'accounts')::bigint > 0) || v_reauth,
    'failure_rate', jsonb_build_object(
      'firing', v_ended >= p_failure_min_posts and v_percent > p_failure_rate_percent,
      'percent', v_percent,
      'published', (v_hour ->> 'published')::bigint,
      'failed', (v_hour ->> 'failed')::bigint,
      'needs_review', (v_hour ->> 'needs_review')::bigint,
      'limit_percent', p_failure_rate_percent,
      'min_posts', p_failure_min_posts));
end
$$;

revoke all on function public.publisher_kpis(double precision[]),
  public.publisher_alarms(double precision, double precision, double precision,
                          double precision, integer)
  from public, anon, authenticated;
grant execute on function public.publisher_kpis(double precision[]),
  public.publisher_alarms(double precision, double precision, double precision,
                          double precision, integer)
  to service_role;

notify pgrst, 'reload schema';
