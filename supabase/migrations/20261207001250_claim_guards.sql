-- Claim guards: what housekeeping would move is never claimed in the meantime.
--
-- * scheduled_at is null: a post written as local time + zone is claimed only once its
--   instant is resolved (and expired if it resolves more than MAX_PUBLISH_DELAY_HOURS late).
--   Without this, a not_before alone made it due: due_at is greatest(scheduled_at,
--   not_before), and greatest() ignores nulls.
-- * attempts >= max_attempts: out of attempts; housekeeping fails it with the reason. Claiming
--   it would give it one more attempt, and at attempts = 2147483647 the claim's attempts + 1
--   overflowed, failing the whole claim (every run) for one odd row.
-- Otherwise claim_due_posts is as 20261130000300_claim_speed.sql defines it now.

CREATE OR REPLACE FUNCTION public.claim_due_posts(p_worker text, p_limits jsonb, p_lease_seconds double precision)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_candidates public.publisher_post_id[];
  v_admitted public.publisher_post_id[] := '{}';
  v_new public.publisher_post_id[];
  v_limits jsonb := p_limits;
  v_held_back integer;
  v_round integer := 0;
  v_result jsonb;
  v_quotas boolean;
  -- This round's quota checks, one element per (candidate, quota it counts against), as
  -- parallel arrays: no temporary table, so a claim never writes to the system catalogs.
  -- The candidates are locked by this transaction, so their values cannot change under us.
  k_ids public.publisher_post_id[];
  k_platforms text[];
  k_scopes text[];
  k_accounts uuid[];
  k_keys bigint[];
  k_priorities smallint[];
  k_dues timestamptz[];
  k_attempts integer[];
  k_types text[];
  v_blocked bigint[];
begin
  -- Whether any platform asked for has a quota at all: if not, no candidate can count
  -- against one, and the quota step (which would find nothing) is skipped.
  v_quotas := exists (select 1 from public.publish_quotas q
                       where q.platform in (select jsonb_object_keys(p_limits)));
  -- Posts held back by a quota get a later not_before, so another round picks the next ones;
  -- a few rounds fill the batch even when the first candidates were all over quota.
  loop
    v_round := v_round + 1;
    select coalesce(array_agg(picked.id), '{}') into v_candidates
      from jsonb_each_text(v_limits) as l(platform, n)
      left join public.platform_pauses pp
        on pp.platform = l.platform and pp.paused_until > now()
      cross join lateral (
        select c.id
          from public.created_content c
         where c.status in ('scheduled', 'retrying')
           and c.platform = l.platform
           and c.due_at <= now()
           and c.scheduled_at is not null
           and c.attempts < c.max_attempts
           and c.id <> all (v_admitted)
           and not exists (select 1 from public.social_accounts a
                            where a.id = c.account_id and a.paused_until > now())
         order by c.priority desc, c.due_at, c.id
         limit case when pp.platform is null then greatest(l.n::integer, 0) else 0 end
           for update of c skip locked
      ) picked;
    exit when cardinality(v_candidates) = 0;

    if not v_quotas then
      v_admitted := v_admitted || v_candidates;
      exit;
    end if;

    -- The quota keys these candidates count against.
    select coalesce(array_agg(c.id), '{}'), array_agg(q.platform), array_agg(q.scope),
           array_agg(c.account_id),
           array_agg(hashtextextended(q.platform || ':' || q.scope || ':' ||
                       case when q.scope = 'account' then coalesce(c.account_id::text, '')
                            else '*' end, 7243)),
           array_agg(c.priority), array_agg(c.due_at), array_agg(c.attempts + 1),
           array_agg(c.post_type)
      into k_ids, k_platforms, k_scopes, k_accounts, k_keys, k_priorities, k_dues,
           k_attempts, k_types
      from public.created_content c
      join public.publish_quotas q on q.platform = c.platform
       and (q.post_types is null or c.post_type = any(q.post_types))
     where c.id = any(v_candidates);

    if cardinality(k_ids) = 0 then
      -- No candidate counts against a quota.
      v_admitted := v_admitted || v_candidates;
      exit;
    end if;

    -- Serialize each quota key across claimers. First round: wait for the keys, all
    -- claimers in the same order (no cycle). Later rounds already hold keys, so they only
    -- try: a key someone else holds leaves its posts for the next claim (never a deadlock).
    if v_round = 1 then
      perform pg_advisory_xact_lock(k.key)
         from (select distinct u.key from unnest(k_keys) as u(key) order by 1) k;
      v_blocked := '{}';
    else
      v_blocked := array(select d.key
                           from (select distinct u.key from unnest(k_keys) as u(key)) d
                          where not pg_try_advisory_xact_lock(d.key));
    end if;

    -- A new statement, so a new snapshot: it sees reservations other claimers committed
    -- while we waited for the locks. Usage is read once per quota key (on the key's first
    -- candidate, then spread over the key's rows by a window), not once per candidate; the
    -- steps are windows and set operations, so however the planner misjudges the row
    -- counts, the work stays proportional to the candidates.
    with k as (
      select *
        from unnest(k_ids, k_platforms, k_scopes, k_accounts, k_keys, k_priorities, k_dues,
                    k_attempts, k_types)
          as u(id, platform, scope, account_id, key, priority, due_at, attempt, post_type)
    ), ranked as (
      -- Candidates with a key another claimer holds wait for the next claim.
      select k.id, k.platform, k.scope, k.account_id, k.attempt, k.post_type,
             case when k.scope = 'account' then k.account_id end as key_account,
             count(*) over (partition by k.id) as n_checks,
             row_number() over (
               partition by k.platform, k.scope,
                            case when k.scope = 'account' then k.account_id end
               order by k.priority desc, k.due_at, k.id) as rank
        from k
       where k.id not in (select b.id from k b where b.key = any(v_blocked))
    ), counted as (
      select r.*, q.max_posts, q.window_seconds,
             max(n.used) over key_rows as used, min(n.oldest) over key_rows as oldest
        from ranked r
        join public.publish_quotas q on q.platform = r.platform and q.scope = r.scope
        cross join lateral (
          -- Reservations in the window, oldest first (the oldest says when a slot frees),
          -- counted up to max_posts (at least one, for the oldest): beyond max_posts the
          -- quota is full whatever the count.
          select count(*) as used, min(x.reserved_at) as oldest
            from ((select a.reserved_at
                     from public.quota_reservations a
                    where r.rank = 1 and r.scope = 'account'
                      and a.platform = r.platform and a.scope = 'account'
                      and a.account_id = r.key_account
                      and (q.post_types is null or a.post_type = any(q.post_types))
                      and a.reserved_at > now() - make_interval(secs => q.window_seconds)
                    order by a.reserved_at
                    limit greatest(q.max_posts, 1))
                  union all
                  (select p.reserved_at
                     from public.quota_reservations p
                    where r.rank = 1 and r.scope = 'platform'
                      and p.platform = r.platform and p.scope = 'platform'
                      and (q.post_types is null or p.post_type = any(q.post_types))
                      and p.reserved_at > now() - make_interval(secs => q.window_seconds)
                    order by p.reserved_at
                    limit greatest(q.max_posts, 1))) x
        ) n
      window key_rows as (partition by r.platform, r.scope, r.key_account)
    ), checked as (
      select c.*, c.rank <= c.max_posts - c.used as fits,
             coalesce(c.oldest, now()) + make_interval(secs => c.window_seconds) as free_at
        from counted c
    ), judged as (
      -- Admitted: every quota it counts against has room (and its key is ours).
      select ch.*, bool_and(ch.fits) over (partition by ch.id)
                   and count(*) over (partition by ch.id) = ch.n_checks as admit
        from checked ch
    ), held as (
      -- Over a quota: wait for its next free slot; not failed, no attempt used.
      update public.created_content c
         set not_before = greatest(coalesce(c.not_before, now()), w.free_at),
             last_error = 'waiting for quota: ' || w.what,
             updated_at = now()
        from (select j.id, max(j.free_at) as free_at,
                     string_agg(j.platform || ' ' || j.scope || ' quota full', ', '
                                order by j.scope, j.platform) as what
                from judged j where j.fits is false group by j.id) w
       where c.id = w.id
      returning c.id
    ), reserved as (
      insert into public.quota_reservations (post_id, attempt, platform, scope, account_id,
                                             post_type)
      select j.id, j.attempt, j.platform, j.scope, j.account_id, j.post_type
        from judged j
       where j.admit
      returning post_id
    )
    -- Admitted: candidates under no quota, and those with a reservation for each quota.
    select (select count(*) from held),
           array((select cand.id from unnest(v_candidates) as cand(id)
                  except
                  select k.id from k)
                 union
                 select r.post_id from reserved r)
      into v_held_back, v_new;
    v_admitted := v_admitted || v_new;

    exit when v_held_back = 0 or v_round >= 5;
    -- Next round: only as many per platform as are still wanted.
    select coalesce(jsonb_object_agg(l.platform, l.n::integer - coalesce(got.n, 0)), '{}')
      into v_limits
      from jsonb_each_text(p_limits) as l(platform, n)
      left join (select c.platform, count(*) as n from public.created_content c
                  where c.id = any(v_admitted) group by c.platform) got
        on got.platform = l.platform
     where l.n::integer - coalesce(got.n, 0) > 0;
    exit when v_limits = '{}'::jsonb;
  end loop;

  with claimed as (
    update public.created_content c
       set status = 'publishing',
           attempts = c.attempts + 1,
           locked_by = p_worker,
           lease_expires_at = now() + make_interval(secs => p_lease_seconds),
           sending_started_at = null,
           updated_at = now()
     where c.id = any(v_admitted)
    -- only what the answer needs: the rest of the row is not copied along
    returning c.id, c.attempts, c.max_attempts, c.platform, c.post_type, c.content, c.title,
              c.link_url, c.media_urls, c.platform_options, c.priority, c.scheduled_at,
              c.user_id, c.publish_state, c.sending_started_at, c.account_id, c.due_at
  )
  select coalesce(to_jsonb(array_agg(x.post order by x.priority desc, x.due_at, x.id)), '[]')
    into v_result
    from (select c.priority, c.due_at, c.id, to_jsonb(p) as post
            from claimed c
            left join public.social_accounts a on a.id = c.account_id
           cross join lateral (
             -- The post's keys are these column names (see above).
             select c.id, c.attempts as attempt, c.max_attempts, c.platform, c.post_type,
                    c.content, c.title, c.link_url, c.media_urls,
                    c.platform_options as options, c.priority, c.scheduled_at, c.user_id,
                    c.publish_state, c.sending_started_at,
                    (select to_jsonb(acc)
                       from (select a.id, a.platform, a.external_id, a.status,
                                    a.status_reason, a.access_token_encrypted,
                                    a.refresh_token_encrypted, a.token_expires_at,
                                    -- added by 20261207000800 (plpgsql resolves it when run)
                                    a.login_type) acc
                      where a.id is not null) as account) p) x;
  return v_result;
end
$function$;
revoke all on function public.claim_due_posts(text,jsonb,double precision) from public, anon, authenticated;
grant execute on function public.claim_due_posts(text,jsonb,double precision) to service_role;

notify pgrst, 'reload schema';
