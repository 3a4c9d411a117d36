-- The "sending" stamp carries what a check after a crash needs to find the post.
--
-- An Instagram post's container and a YouTube upload's session exist before the one
-- irreversible call (media_publish, the last chunk), and only they can tell afterwards
-- whether that call took effect. Until now they reached the row with the outcome alone, so
-- a worker killed during the call left "sending started" and nothing to check: the post
-- went to a person. Each stamp may now carry a `state`, merged into publish_state by the
-- same statement (no statement added; a stamp without one writes what it wrote before).
-- Otherwise mark_sending is as 20261130000300_claim_speed.sql defines it (fence included).
-- p_claims: [{"id": 1, "attempt": 1, "state": {"container_id": "..."}}, ...]; state optional.
create or replace function public.mark_sending(p_worker text, p_claims jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_marked jsonb;
begin
  with items as (
    select * from jsonb_to_recordset(p_claims)
      as x(id public.publisher_post_id, attempt integer, state jsonb)
  ), marked as (
    update public.created_content c
       set sending_started_at = now(),
           publish_state = case when i.state is null then c.publish_state
                                else coalesce(c.publish_state, '{}') || i.state end
      from items i
     where c.id = i.id and c.attempts = i.attempt
       and case when c.status = 'publishing' then c.locked_by end = p_worker  -- see the fence note in 20261130000300
       and c.lease_expires_at > now()
    returning c.id
  )
  select coalesce(jsonb_agg(id), '[]') into v_marked from marked;
  return v_marked;
end
$$;

revoke all on function public.mark_sending(text, jsonb) from public, anon, authenticated;
grant execute on function public.mark_sending(text, jsonb) to service_role;

notify pgrst, 'reload schema';
