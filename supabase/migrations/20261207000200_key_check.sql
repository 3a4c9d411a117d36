-- The pre-claim key check (publisher.keycheck): before a run touches any post, it tries
-- ENCRYPTION_KEY on a few sealed access tokens of the active accounts that have due posts.
-- A valid key that opens none of them is a settings error (exit 2, nothing claimed), not
-- a reason to fail every due post for good.
--
-- Returns a json array of up to p_limit sealed access tokens (ciphertext, never a key).
-- Tokens are spread over the key ids they name (the second field of `v1:<key id>:...`):
-- every key id gets one token before any gets a second, at most three each, so one token
-- sealed with the current key is always in the sample when any due account has one.
-- Anything not shaped like our format shares one bucket, so garbage cannot crowd out the
-- tokens that decide. The accounts are those of up to 10,000 due posts, so the check
-- costs tens of milliseconds however long the backlog. Read-only.
create or replace function public.sample_sealed_tokens(p_limit integer)
returns jsonb
language sql stable
set search_path = ''
as $$
  with due_accounts as (
    select distinct d.account_id
      from (select c.account_id
              from public.created_content c
             where c.status in ('scheduled', 'retrying')
               and c.due_at <= now()
               and c.account_id is not null
             limit 10000) d
  ), tokens as (
    select a.access_token_encrypted as token,
           row_number() over (
             partition by case when a.access_token_encrypted ~ '^v1:[0-9a-f]{8}:'
                               then split_part(a.access_token_encrypted, ':', 2) end
             order by a.id) as n
      from public.social_accounts a
      join due_accounts d on d.account_id = a.id
     where a.status = 'active'
       and coalesce(a.access_token_encrypted, '') <> ''
  )
  select coalesce(jsonb_agg(t.token order by t.n, t.token), '[]'::jsonb)
    from (select token, n from tokens where n <= 3 order by n, token
          limit greatest(p_limit, 0)) t;
$$;

revoke all on function public.sample_sealed_tokens(integer) from public, anon, authenticated;
grant execute on function public.sample_sealed_tokens(integer) to service_role;

notify pgrst, 'reload schema';
