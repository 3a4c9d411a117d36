-- `publisher tokens reseal` (publisher.reseal): re-seal stored tokens with the current key
-- after a rotation, and import plaintext tokens from a column of social_accounts that the
-- product names. The key never reaches the database: Python opens and seals, these two
-- functions only read a page of rows and write a batch back. Both for service_role only.
--
-- A product column name comes in as a parameter. It is used only after it is checked in
-- the catalog (a text or varchar column of public.social_accounts, not one of the
-- publisher's own columns) and is only ever quoted (format %I): no unchecked input becomes
-- SQL.

-- One page of accounts that hold a token (sealed in our columns, or plaintext in the named
-- columns), in id order after p_after (null: from the start), at most p_limit:
--   {"problem": null, "accounts": [{"id", "platform", "access", "refresh",
--                                   "plain_access", "plain_refresh"}, ...]}
-- access/refresh are our columns exactly as stored (the compare-and-set of
-- reseal_account_tokens compares them); plain_* are the named columns ('' as null; null
-- when no column is named). A column that fails the check gives {"problem": "...",
-- "accounts": []} and reads nothing. Read-only.
create or replace function public.list_account_tokens(
  p_after uuid, p_limit integer, p_access_column text, p_refresh_column text
) returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
  v_column text;
  v_plain text[] := array['null::text', 'null::text'];
  v_result jsonb;
begin
  if p_access_column = p_refresh_column then
    return jsonb_build_object('problem', format(
      'the access and refresh token columns must differ (both are %I)', p_access_column),
      'accounts', '[]'::jsonb);
  end if;
  foreach v_column in array array_remove(array[p_access_column, p_refresh_column], null) loop
    if v_column in ('access_token_encrypted', 'refresh_token_encrypted', 'platform',
                    'external_id', 'display_name', 'status', 'status_reason',
                    'refresh_locked_by')
       or not exists (
         select 1 from pg_catalog.pg_attribute a
          where a.attrelid = 'public.social_accounts'::pg_catalog.regclass
            and a.attname = v_column and a.attnum > 0 and not a.attisdropped
            and a.atttypid in ('pg_catalog.text'::pg_catalog.regtype,
                               'pg_catalog.varchar'::pg_catalog.regtype)) then
      return jsonb_build_object('problem', format(
        'social_accounts has no text column %I to import plaintext tokens from (it must '
        'exist, be text or varchar, and not be one of the publisher''s own columns)',
        v_column), 'accounts', '[]'::jsonb);
    end if;
  end loop;
  if p_access_column is not null then
    v_plain[1] := format('nullif(a.%I::text, %L)', p_access_column, '');
  end if;
  if p_refresh_column is not null then
    v_plain[2] := format('nullif(a.%I::text, %L)', p_refresh_column, '');
  end if;
  execute format($q$
    select coalesce(jsonb_agg(jsonb_build_object(
             'id', r.id, 'platform', r.platform, 'access', r.access, 'refresh', r.refresh,
             'plain_access', r.plain_access, 'plain_refresh', r.plain_refresh)
             order by r.id), '[]'::jsonb)
      from (select a.id, a.platform, a.access_token_encrypted as access,
                   a.refresh_token_encrypted as refresh,
                   %1$s as plain_access, %2$s as plain_refresh
              from public.social_accounts a
             where ($1 is null or a.id > $1)
               and (coalesce(a.access_token_encrypted, '') <> ''
                    or coalesce(a.refresh_token_encrypted, '') <> ''
                    or %1$s is not null or %2$s is not null)
             order by a.id
             limit greatest($2, 0)) r
  $q$, v_plain[1], v_plain[2])
  into v_result
  using p_after, p_limit;
  return jsonb_build_object('problem', null, 'accounts', v_result);
end
$$;

-- Writes a batch of re-sealed or imported tokens, each row fenced by compare-and-set: a
-- row is written only while its sealed tokens are still the ones read (and the named
-- plaintext columns still hold what was read, compared by sha256), so a token a worker
-- refreshed meanwhile, or the product wrote anew, is never overwritten. Items:
--   {"id", "access", "refresh",                 -- our columns as read (the fence)
--    "new_access", "new_refresh",               -- sealed values to write; null: keep
--    "plain_access_sha256", "plain_refresh_sha256",  -- hex sha256 of the plaintext read
--    "clear_access", "clear_refresh"}           -- null the named plaintext column
-- One statement, one transaction: sealing and clearing a plaintext column go together.
-- Returns {"applied": n, "changed": [ids of rows that no longer matched (left alone)]}.
create or replace function public.reseal_account_tokens(
  p_items jsonb, p_access_column text, p_refresh_column text
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_column text;
  v_set text := '';
  v_fence text := '';
  v_result jsonb;
begin
  if p_access_column = p_refresh_column then
    raise exception 'the access and refresh token columns must differ'
      using errcode = '22023';
  end if;
  foreach v_column in array array_remove(array[p_access_column, p_refresh_column], null) loop
    if v_column in ('access_token_encrypted', 'refresh_token_encrypted', 'platform',
                    'external_id', 'display_name', 'status', 'status_reason',
                    'refresh_locked_by')
       or not exists (
         select 1 from pg_catalog.pg_attribute a
          where a.attrelid = 'public.social_accounts'::pg_catalog.regclass
            and a.attname = v_column and a.attnum > 0 and not a.attisdropped
            and a.atttypid in ('pg_catalog.text'::pg_catalog.regtype,
                               'pg_catalog.varchar'::pg_catalog.regtype)) then
      raise exception 'social_accounts has no text column % to import tokens from',
        pg_catalog.quote_ident(v_column) using errcode = '22023';
    end if;
  end loop;
  if p_access_column is not null then
    v_set := v_set || format(', %1$I = case when i.clear_access then null else a.%1$I end',
                             p_access_column);
    v_fence := v_fence || format(
      ' and pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to('
      'nullif(a.%I::text, %L), %L)), %L) is not distinct from i.plain_access_sha256',
      p_access_column, '', 'UTF8', 'hex');
  end if;
  if p_refresh_column is not null then
    v_set := v_set || format(', %1$I = case when i.clear_refresh then null else a.%1$I end',
                             p_refresh_column);
    v_fence := v_fence || format(
      ' and pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to('
      'nullif(a.%I::text, %L), %L)), %L) is not distinct from i.plain_refresh_sha256',
      p_refresh_column, '', 'UTF8', 'hex');
  end if;
  execute format($q$
    with items as (
      select * from jsonb_to_recordset($1) as i(
        id uuid, access text, refresh text, new_access text, new_refresh text,
        plain_access_sha256 text, plain_refresh_sha256 text,
        clear_access boolean, clear_refresh boolean)
    ), done as (
      update public.social_accounts a
         set access_token_encrypted = coalesce(i.new_access, a.access_token_encrypted),
             refresh_token_encrypted = coalesce(i.new_refresh, a.refresh_token_encrypted),
             updated_at = now()%1$s
        from items i
       where a.id = i.id
         and a.access_token_encrypted is not distinct from i.access
         and a.refresh_token_encrypted is not distinct from i.refresh%2$s
      returning a.id
    )
    select jsonb_build_object(
      'applied', (select count(*) from done),
      'changed', coalesce((select jsonb_agg(i.id order by i.id) from items i
                            where i.id not in (select d.id from done d)), '[]'::jsonb))
  $q$, v_set, v_fence)
  into v_result
  using p_items;
  return v_result;
end
$$;

revoke all on function public.list_account_tokens(uuid, integer, text, text)
  from public, anon, authenticated;
grant execute on function public.list_account_tokens(uuid, integer, text, text) to service_role;
revoke all on function public.reseal_account_tokens(jsonb, text, text)
  from public, anon, authenticated;
grant execute on function public.reseal_account_tokens(jsonb, text, text) to service_role;

notify pgrst, 'reload schema';
