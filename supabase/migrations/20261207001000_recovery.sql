-- Review and recovery: what an operator (`publisher review`, `publisher posts ...`) or the
-- product's admin screen (Supabase rpc) does with posts the publisher could not finish.
-- Idempotent (create or replace); one signature per function; each returns one json value;
-- service_role only; search_path '' and every name schema-qualified.
--
-- The fence: no function here touches a post a worker holds (status 'publishing' with a
-- lease that has not run out: a claim, or a review hold of claim_for_review). Each locks
-- the rows it changes and checks their state again under the lock, so a claim taken a
-- moment before wins and the post is refused, never changed under the worker.
--
-- Post ids come as text (p_ids text[]) and are cast here to the type of created_content.id
-- (public.publisher_post_id: bigint or uuid), so one call serves either; a text that is no
-- id of that type is answered as "no such post", like an id that does not exist.
--
-- The id-based functions answer
--   {"changed":   [{"id", "from", "to"}],       done
--    "unchanged": [{"id", "status", "reason"}], already so (not an error)
--    "refused":   [{"id", "status", "reason"}]} unknown, held by a worker, or a state the
--                                               action does not apply to
-- and write one publish_attempts row per changed post: worker_id 'operator[:<who>]',
-- outcome 'manual', the post's new status, detail {"action", "from", "note"}.
--
-- Back to the queue (requeue_posts; also `publisher review ID --not-published`, which is
-- requeue_posts from needs_review) means:
--  * status 'scheduled', not_before null: due at scheduled_at, or now where that has
--    passed (scheduled_at moves to now(); the old one is kept in
--    god_mode_metadata.recovery.scheduled_at): an operator's decision overrides expiry,
--    which would otherwise take a post more than MAX_PUBLISH_DELAY_HOURS late at once.
--    A post still waiting for its local time to be worked out keeps scheduled_at null.
--  * a fresh budget of attempts. attempts itself never goes back (it numbers the claims,
--    which fence every write, and the attempt log), so max_attempts is raised to attempts
--    plus the budget: the post's max_attempts as it was before its first requeue
--    (god_mode_metadata.recovery.attempt_budget).
--  * the "sending" stamp, the lease and the review counters cleared; last_error and
--    publish_error cleared (the previous error is kept in god_mode_metadata.recovery and
--    in the attempt log); publish_state kept, so the next attempt resumes from what the
--    platform already has (an Instagram container, a YouTube upload session).
--  * the post's quota reservations released: it is not live, by the operator's word.

create or replace function public.list_review_posts(p_ids text[], p_platform text,
                                                    p_limit integer)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
-- p_ids null: the posts in needs_review (of p_platform, if given), oldest "sending" first,
-- at most p_limit; p_ids given: those posts whatever their state. Each with its evidence:
-- what was sent and when, what the platform answered (last_error and the attempt log, the
-- newest 20 rows), what reconciliation checked (review_checks, review_checked_at,
-- publish_state). {"posts": [...], "total": posts in needs_review matching, "unknown": [...]}
declare
  v_ids public.publisher_post_id[];
  v_unknown jsonb := '[]';
  v_text text;
  v_posts jsonb;
begin
  if p_ids is not null then
    foreach v_text in array p_ids loop
      begin
        v_ids := v_ids || btrim(v_text)::public.publisher_post_id;
      exception when invalid_text_representation or numeric_value_out_of_range then
        v_unknown := v_unknown || to_jsonb(v_text);
      end;
    end loop;
    select v_unknown || coalesce(jsonb_agg(to_jsonb(i.id)), '[]')
      into v_unknown
      from unnest(coalesce(v_ids, '{}')) as i(id)
     where not exists (select 1 from public.created_content c where c.id = i.id);
  end if;

  select coalesce(jsonb_agg(jsonb_build_object(
           'id', c.id, 'status', c.status, 'platform', c.platform, 'post_type', c.post_type,
           'account', case when a.id is null then null else jsonb_build_object(
             'id', a.id, 'display_name', a.display_name, 'external_id', a.external_id,
             'status', a.status) end,
           'content', left(c.content, 200), 'title', c.title,
           'scheduled_at', c.scheduled_at, 'sending_started_at', c.sending_started_at,
           'attempts', c.attempts, 'max_attempts', c.max_attempts,
           'last_error', c.last_error,
           'review_checks', c.review_checks, 'review_checked_at', c.review_checked_at,
           'publish_state', c.publish_state,
           'platform_post_id', c.platform_post_id, 'platform_url', c.platform_url,
           'locked_by', c.locked_by, 'lease_expires_at', c.lease_expires_at,
           'recovery', c.god_mode_metadata -> 'recovery',
           'updated_at', c.updated_at,
           'attempt_log', coalesce((
             select jsonb_agg(jsonb_build_object(
                      'attempt', l.attempt, 'worker_id', l.worker_id, 'outcome', l.outcome,
                      'status', l.status, 'applied', l.applied, 'error', l.error,
                      'platform_post_id', l.platform_post_id, 'detail', l.detail,
                      'recorded_at', l.recorded_at) order by l.id)
               from (select * from public.publish_attempts pa
                      where pa.post_id = c.id
                      order by pa.id desc limit 20) l), '[]'))
           order by c.sending_started_at nulls last, c.id), '[]')
    into v_posts
    from (select * from public.created_content x
           where (p_ids is null and x.status = 'needs_review'
                  and (p_platform is null or x.platform = p_platform))
              or x.id = any(v_ids)
           order by x.sending_started_at nulls last, x.id
           limit greatest(coalesce(p_limit, 100), 0)) c
    left join public.social_accounts a on a.id = c.account_id;

  return jsonb_build_object(
    'posts', v_posts,
    'total', (select count(*) from public.created_content x
               where x.status = 'needs_review'
                 and (p_platform is null or x.platform = p_platform)),
    'unknown', v_unknown);
end
$$;

create or replace function public.requeue_posts(p_ids text[], p_from text[],
                                                p_operator text, p_note text)
returns jsonb
language plpgsql
set search_path = ''
as $$
-- Back to the queue (see the top of this file) from the states in p_from (null: all that
-- can be: failed, expired, needs_review, canceled, retrying, and publishing whose lease ran
-- out); any other state is refused, 'scheduled' is left unchanged.
declare
  k_states constant text[] := array['failed', 'expired', 'needs_review', 'canceled',
                                    'retrying', 'publishing'];
  v_from text[] := array(select s from unnest(k_states) s
                          where s = any(coalesce(p_from, k_states)));
  v_who text := 'operator' || coalesce(':' || nullif(btrim(p_operator), ''), '');
  v_ids public.publisher_post_id[] := '{}';
  v_bad jsonb := '[]';
  v_text text;
  v_done public.publisher_post_id[];
  v_changed jsonb;
begin
  foreach v_text in array coalesce(p_ids, '{}') loop
    begin
      v_ids := v_ids || btrim(v_text)::public.publisher_post_id;
    exception when invalid_text_representation or numeric_value_out_of_range then
      v_bad := v_bad || jsonb_build_object('id', v_text, 'status', null,
                                           'reason', 'no such post');
    end;
  end loop;

  with picked as (
    select c.id, c.status,
           case when jsonb_typeof(c.god_mode_metadata #> '{recovery,attempt_budget}') = 'number'
                then greatest((c.god_mode_metadata #>> '{recovery,attempt_budget}')::numeric
                              ::integer, 1)
                else c.max_attempts end as budget
      from public.created_content c
     where c.id = any(v_ids)
       and c.status = any(v_from)
       and not (c.status = 'publishing' and coalesce(c.lease_expires_at > now(), false))
     order by c.id
       for update
  ), moved as (
    update public.created_content c
       set status = 'scheduled',
           scheduled_at = case
             when c.scheduled_at is null and c.scheduled_local is not null then null
             else greatest(coalesce(c.scheduled_at, now()), now()) end,
           not_before = null,
           max_attempts = c.attempts + p.budget,
           sending_started_at = null,
           locked_by = null,
           lease_expires_at = null,
           review_checks = 0,
           review_checked_at = null,
           last_error = null,
           god_mode_metadata = (c.god_mode_metadata - 'publish_error')
             || jsonb_build_object('recovery', jsonb_build_object(
                  'action', 'requeue', 'by', v_who, 'at', now(), 'from', p.status,
                  'note', p_note, 'scheduled_at', c.scheduled_at,
                  'last_error', c.last_error, 'attempt_budget', p.budget)),
           updated_at = now()
      from picked p
     where c.id = p.id
    returning c.id, p.status as from_status, c.attempts
  ), freed as (
    delete from public.quota_reservations r
     using moved m
     where r.post_id = m.id
    returning 1
  ), logged as (
    insert into public.publish_attempts
      (post_id, worker_id, attempt, outcome, status, applied, detail)
    select m.id, v_who, m.attempts, 'manual', 'scheduled', true,
           jsonb_build_object('action', 'requeue', 'from', m.from_status, 'note', p_note)
      from moved m
    returning 1
  )
  select coalesce(array_agg(m.id), '{}'),
         coalesce(jsonb_agg(jsonb_build_object('id', m.id, 'from', m.from_status,
                                               'to', 'scheduled') order by m.id), '[]')
    into v_done, v_changed
    from moved m;

  return jsonb_build_object('changed', v_changed) || (
    select jsonb_build_object(
      'unchanged', coalesce(jsonb_agg(r.item) filter (where r.status = 'scheduled'), '[]'),
      'refused', v_bad || coalesce(jsonb_agg(r.item)
                                   filter (where r.status is distinct from 'scheduled'), '[]'))
      from (select c.status, jsonb_build_object(
                     'id', coalesce(to_jsonb(c.id), to_jsonb(i.id)), 'status', c.status,
                     'reason', case
                       when c.id is null then 'no such post'
                       when c.status = 'scheduled' then 'already in the queue'
                       when c.status = 'publishing' and coalesce(c.lease_expires_at > now(),
                                                                 false)
                         then format('a worker holds it (%s, lease until %s): wait for its '
                                     'outcome', c.locked_by, c.lease_expires_at)
                       else format('it is %s: only %s posts go back to the queue this way',
                                   c.status, array_to_string(v_from, ', '))
                     end) as item
              from (select distinct u.id from unnest(v_ids) as u(id)) i
              left join public.created_content c on c.id = i.id
             where i.id <> all (v_done)) r);
end
$$;

create or replace function public.cancel_posts(p_ids text[], p_operator text, p_note text)
returns jsonb
language plpgsql
set search_path = ''
as $$
-- Any unpublished state no worker holds -> canceled. The post's quota reservations go
-- unless it may be live (needs_review, or a lapsed claim that had stamped "sending").
-- last_error, publish_state and the "sending" stamp are kept as evidence.
declare
  v_who text := 'operator' || coalesce(':' || nullif(btrim(p_operator), ''), '');
  v_ids public.publisher_post_id[] := '{}';
  v_bad jsonb := '[]';
  v_text text;
  v_done public.publisher_post_id[];
  v_changed jsonb;
begin
  foreach v_text in array coalesce(p_ids, '{}') loop
    begin
      v_ids := v_ids || btrim(v_text)::public.publisher_post_id;
    exception when invalid_text_representation or numeric_value_out_of_range then
      v_bad := v_bad || jsonb_build_object('id', v_text, 'status', null,
                                           'reason', 'no such post');
    end;
  end loop;

  with picked as (
    select c.id, c.status,
           c.status = 'needs_review'
             or (c.status = 'publishing' and c.sending_started_at is not null) as maybe_live
      from public.created_content c
     where c.id = any(v_ids)
       and c.status in ('draft', 'scheduled', 'retrying', 'failed', 'expired',
                        'needs_review', 'publishing')
       and not (c.status = 'publishing' and coalesce(c.lease_expires_at > now(), false))
     order by c.id
       for update
  ), moved as (
    update public.created_content c
       set status = 'canceled',
           locked_by = null,
           lease_expires_at = null,
           god_mode_metadata = c.god_mode_metadata
             || jsonb_build_object('recovery', jsonb_build_object(
                  'action', 'cancel', 'by', v_who, 'at', now(), 'from', p.status,
                  'note', p_note)
                  -- a requeue after this cancel still knows the original budget
                  || jsonb_strip_nulls(jsonb_build_object(
                       'attempt_budget', c.god_mode_metadata #> '{recovery,attempt_budget}'))),
           updated_at = now()
      from picked p
     where c.id = p.id
    returning c.id, p.status as from_status, p.maybe_live, c.attempts
  ), freed as (
    delete from public.quota_reservations r
     using moved m
     where r.post_id = m.id and not m.maybe_live
    returning 1
  ), logged as (
    insert into public.publish_attempts
      (post_id, worker_id, attempt, outcome, status, applied, detail)
    select m.id, v_who, m.attempts, 'manual', 'canceled', true,
           jsonb_build_object('action', 'cancel', 'from', m.from_status, 'note', p_note)
      from moved m
    returning 1
  )
  select coalesce(array_agg(m.id), '{}'),
         coalesce(jsonb_agg(jsonb_build_object('id', m.id, 'from', m.from_status,
                                               'to', 'canceled') order by m.id), '[]')
    into v_done, v_changed
    from moved m;

  return jsonb_build_object('changed', v_changed) || (
    select jsonb_build_object(
      'unchanged', coalesce(jsonb_agg(r.item) filter (where r.status = 'canceled'), '[]'),
      'refused', v_bad || coalesce(jsonb_agg(r.item)
                                   filter (where r.status is distinct from 'canceled'), '[]'))
      from (select c.status, jsonb_build_object(
                     'id', coalesce(to_jsonb(c.id), to_jsonb(i.id)), 'status', c.status,
                     'reason', case
                       when c.id is null then 'no such post'
                       when c.status = 'canceled' then 'already canceled'
                       when c.status = 'published' then 'it is published: canceling cannot '
                                                        'take it down'
                       when c.status = 'publishing'
                         then format('a worker holds it (%s, lease until %s): wait for its '
                                     'outcome', c.locked_by, c.lease_expires_at)
                       else format('it is %s', c.status)
                     end) as item
              from (select distinct u.id from unnest(v_ids) as u(id)) i
              left join public.created_content c on c.id = i.id
             where i.id <> all (v_done)) r);
end
$$;

create or replace function public.mark_published(p_id text, p_platform_post_id text,
                                                 p_platform_url text, p_operator text,
                                                 p_note text)
returns jsonb
language plpgsql
set search_path = ''
as $$
-- A person checked the account: the post is live. Any unpublished state no worker holds
-- (needs_review above all; also failed or expired, since an error answer to the publishing
-- call never proved nothing was made). published_at is when sending started if that was
-- stamped, else now; the platform's id and URL are kept unless given; the quota
-- reservations stay (the post counts against the account's quota).
declare
  v_who text := 'operator' || coalesce(':' || nullif(btrim(p_operator), ''), '');
  v_id public.publisher_post_id;
  v_changed jsonb;
  v_row record;
begin
  begin
    v_id := btrim(p_id)::public.publisher_post_id;
  exception when invalid_text_representation or numeric_value_out_of_range then
    return jsonb_build_object('changed', '[]'::jsonb, 'unchanged', '[]'::jsonb,
      'refused', jsonb_build_array(jsonb_build_object('id', p_id, 'status', null,
                                                      'reason', 'no such post')));
  end;

  with picked as (
    select c.id, c.status
      from public.created_content c
     where c.id = v_id
       and c.status <> 'published'
       and not (c.status = 'publishing' and coalesce(c.lease_expires_at > now(), false))
       for update
  ), moved as (
    update public.created_content c
       set status = 'published',
           platform_post_id = coalesce(nullif(btrim(p_platform_post_id), ''),
                                       c.platform_post_id),
           platform_url = coalesce(nullif(btrim(p_platform_url), ''), c.platform_url),
           published_at = coalesce(c.published_at, c.sending_started_at, now()),
           locked_by = null,
           lease_expires_at = null,
           last_error = null,
           god_mode_metadata = (c.god_mode_metadata - 'publish_error')
             || jsonb_build_object('recovery', jsonb_build_object(
                  'action', 'published', 'by', v_who, 'at', now(), 'from', p.status,
                  'note', p_note, 'last_error', c.last_error)),
           updated_at = now()
      from picked p
     where c.id = p.id
    returning c.id, p.status as from_status, c.attempts, c.platform_post_id, c.platform_url,
              c.platform, c.account_id, c.user_id
  ), evented as (
    -- The owner hears of it as of any other publish (publisher_events, created by the
    -- outbox migration; plpgsql resolves the table when this runs, not when it is created).
    insert into public.publisher_events
      (type, post_id, account_id, user_id, platform, status, reason, platform_post_id, url)
    select 'post.published', m.id, m.account_id, m.user_id, m.platform, 'published', null,
           m.platform_post_id, m.platform_url
      from moved m
    returning 1
  ), logged as (
    insert into public.publish_attempts
      (post_id, worker_id, attempt, outcome, status, applied, platform_post_id, detail)
    select m.id, v_who, m.attempts, 'manual', 'published', true, m.platform_post_id,
           jsonb_build_object('action', 'published', 'from', m.from_status, 'note', p_note,
                              'platform_url', nullif(btrim(p_platform_url), ''))
      from moved m
    returning 1
  )
  select jsonb_agg(jsonb_build_object('id', m.id, 'from', m.from_status, 'to', 'published'))
    into v_changed
    from moved m;

  if v_changed is not null then
    return jsonb_build_object('changed', v_changed, 'unchanged', '[]'::jsonb,
                              'refused', '[]'::jsonb);
  end if;
  select c.id, c.status, c.locked_by, c.lease_expires_at into v_row
    from public.created_content c where c.id = v_id;
  if not found then
    return jsonb_build_object('changed', '[]'::jsonb, 'unchanged', '[]'::jsonb,
      'refused', jsonb_build_array(jsonb_build_object('id', to_jsonb(v_id), 'status', null,
                                                      'reason', 'no such post')));
  end if;
  if v_row.status = 'published' then
    return jsonb_build_object('changed', '[]'::jsonb, 'refused', '[]'::jsonb,
      'unchanged', jsonb_build_array(jsonb_build_object(
        'id', to_jsonb(v_row.id), 'status', v_row.status, 'reason', 'already published')));
  end if;
  return jsonb_build_object('changed', '[]'::jsonb, 'unchanged', '[]'::jsonb,
    'refused', jsonb_build_array(jsonb_build_object(
      'id', to_jsonb(v_row.id), 'status', v_row.status,
      'reason', format('a worker holds it (%s, lease until %s): wait for its outcome',
                       v_row.locked_by, v_row.lease_expires_at))));
end
$$;

create or replace function public.retry_failed_posts(p_reason text, p_since timestamptz,
                                                     p_platform text, p_dry_run boolean,
                                                     p_operator text)
returns jsonb
language plpgsql
set search_path = ''
as $$
-- Bulk requeue, after the cause of a failure was fixed (an account reconnected, a setting
-- corrected): failed posts whose last_error contains p_reason (case-insensitive, as plain
-- text: % and _ match only themselves; null or '' matches every error) and that failed at
-- or after p_since (updated_at: for a failed post, when it failed), of p_platform if given.
-- p_dry_run: changes nothing. {"matched", "ids": the first 20, "requeued", "result": the
-- requeue_posts answer (not on a dry run)}
declare
  v_pattern text := '%' || replace(replace(replace(coalesce(p_reason, ''), '\', '\\'),
                                           '%', '\%'), '_', '\_') || '%';
  v_ids public.publisher_post_id[];
  v_result jsonb;
begin
  if p_since is null then
    raise exception 'retry_failed_posts: p_since is required (failed since when?)'
      using errcode = '22023';
  end if;
  select coalesce(array_agg(c.id order by c.updated_at, c.id), '{}')
    into v_ids
    from public.created_content c
   where c.status = 'failed'
     and c.updated_at >= p_since
     and (p_platform is null or c.platform = p_platform)
     and coalesce(c.last_error, '') ilike v_pattern escape '\';

  if coalesce(p_dry_run, true) then
    return jsonb_build_object('matched', cardinality(v_ids), 'ids', to_jsonb(v_ids[1:20]),
                              'requeued', 0, 'dry_run', true);
  end if;
  v_result := public.requeue_posts(
    v_ids::text[], array['failed'], p_operator,
    format('retry-failed: last_error contains %L, failed since %s', coalesce(p_reason, ''),
           p_since));
  return jsonb_build_object('matched', cardinality(v_ids), 'ids', to_jsonb(v_ids[1:20]),
                            'requeued', jsonb_array_length(v_result -> 'changed'),
                            'dry_run', false, 'result', v_result);
end
$$;

revoke all on function public.list_review_posts(text[], text, integer),
  public.requeue_posts(text[], text[], text, text),
  public.cancel_posts(text[], text, text),
  public.mark_published(text, text, text, text, text),
  public.retry_failed_posts(text, timestamptz, text, boolean, text)
  from public, anon, authenticated;
grant execute on function public.list_review_posts(text[], text, integer),
  public.requeue_posts(text[], text[], text, text),
  public.cancel_posts(text[], text, text),
  public.mark_published(text, text, text, text, text),
  public.retry_failed_posts(text, timestamptz, text, boolean, text)
  to service_role;

notify pgrst, 'reload schema';
