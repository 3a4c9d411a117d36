-- Instagram accounts come in two kinds, each with its own host and token
-- (developers.facebook.com/docs/instagram-platform/reference, "one of two Meta host URLs"):
--   'facebook'   Instagram API with Facebook Login: graph.facebook.com, the Page's token,
--                which does not expire (made from a long-lived user token) and is not
--                refreshed;
--   'instagram'  Instagram API with Instagram Login: graph.instagram.com for publishing and
--                for refresh_access_token (a 60-day Instagram User token).
-- Each host refuses the other's tokens (code 190, "Cannot parse access token"), so the row
-- says which: social_accounts.login_type, null on other platforms. Instagram rows from
-- before this file are 'facebook', the only host publishing ever went to. The claims
-- carry it in each post's account (claim_due_posts in 20261130000300_claim_speed.sql,
-- claim_for_review in 20261130000200_functions.sql).

alter table public.social_accounts add column if not exists login_type text;

-- NOT VALID: the product's table may be large, and adding a checked constraint scans it
-- under an exclusive lock. Every row written from now on is checked all the same.
do $$
begin
  if not exists (select 1 from pg_catalog.pg_constraint
                  where conrelid = 'public.social_accounts'::regclass
                    and conname = 'social_accounts_login_type_check') then
    alter table public.social_accounts add constraint social_accounts_login_type_check
      check (login_type is null
             or (platform = 'instagram' and login_type in ('facebook', 'instagram')))
      not valid;
  end if;
end
$$;

update public.social_accounts
   set login_type = 'facebook'
 where platform = 'instagram' and login_type is null;

-- connect_account gains p_login_type; the old signature goes, so that PostgREST sees one.
-- On reconnect a null login type keeps the stored one.
drop function if exists public.connect_account(text, text, text, uuid, text, text, timestamptz);

create or replace function public.connect_account(
  p_platform text, p_external_id text, p_display_name text, p_user_id uuid,
  p_access_token_encrypted text, p_refresh_token_encrypted text, p_token_expires_at timestamptz,
  p_login_type text
) returns uuid
language sql
set search_path = ''
as $$
  insert into public.social_accounts as a
    (platform, external_id, display_name, user_id, access_token_encrypted,
     refresh_token_encrypted, token_expires_at, status, status_reason, login_type)
  values (p_platform, p_external_id, p_display_name, p_user_id, p_access_token_encrypted,
          p_refresh_token_encrypted, p_token_expires_at, 'active', null, p_login_type)
  on conflict (platform, external_id) do update
     set display_name = coalesce(excluded.display_name, a.display_name),
         user_id = coalesce(excluded.user_id, a.user_id),
         access_token_encrypted = excluded.access_token_encrypted,
         -- never overwrite a refresh token with nothing
         refresh_token_encrypted = coalesce(excluded.refresh_token_encrypted,
                                            a.refresh_token_encrypted),
         token_expires_at = excluded.token_expires_at,
         login_type = coalesce(excluded.login_type, a.login_type),
         status = 'active', status_reason = null, paused_until = null, updated_at = now()
  returning a.id;
$$;

revoke all on function public.connect_account(text, text, text, uuid, text, text, timestamptz,
                                              text) from public, anon, authenticated;
grant execute on function public.connect_account(text, text, text, uuid, text, text,
                                                 timestamptz, text) to service_role;

notify pgrst, 'reload schema';
