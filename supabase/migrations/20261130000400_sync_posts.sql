-- One statement for a worker's per-post writes: the outcomes it has (record_outcomes) and
-- the "sending" stamps its posts wait for (mark_sending). A run at volume makes one of
-- these every ~0.1 s instead of one of each per handful of posts.
-- Returns {"sending": [ids stamped], "outcomes": record_outcomes' answer or null}.
create or replace function public.sync_posts(p_worker text, p_sending jsonb, p_outcomes jsonb)
returns jsonb
language plpgsql
as $$
declare
  v_outcomes jsonb;
  v_sending jsonb := '[]';
begin
  -- Outcomes first: they free quota and accounts before anything else is stamped.
  if jsonb_array_length(coalesce(p_outcomes, '[]')) > 0 then
    v_outcomes := public.record_outcomes(p_worker, p_outcomes);
  end if;
  if jsonb_array_length(coalesce(p_sending, '[]')) > 0 then
    v_sending := public.mark_sending(p_worker, p_sending);
  end if;
  return jsonb_build_object('sending', v_sending, 'outcomes', v_outcomes);
end
$$;

revoke all on function public.sync_posts(text, jsonb, jsonb) from public, anon, authenticated;
grant execute on function public.sync_posts(text, jsonb, jsonb) to service_role;

notify pgrst, 'reload schema';
