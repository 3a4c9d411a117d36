"""Doctor's access checks: roles, row level security, policies, grants, function settings.

What Supabase's database advisors and our own rules care about: anon reaches nothing of
ours; authenticated reads no token column and none of our internal tables; every function
is for service_role only and has a fixed search_path. On the product's own tables we keep
its grants and policies and add none, and say so.
"""

from __future__ import annotations

from publisher.doctor_checks import Finding, Inspection, finding, listing

SECTION = "access"
API_ROLES = ("anon", "authenticated", "service_role")
END_USERS = ("anon", "authenticated")
# Tables end users may be granted (with owner policies) when we create them; the rest are
# the publisher's own bookkeeping.
USER_FACING = ("created_content", "social_accounts", "publish_attempts", "publisher_events")
TOKEN_COLUMNS = ("access_token_encrypted", "refresh_token_encrypted")
_PRIVILEGES = "array['SELECT','INSERT','UPDATE','DELETE','TRUNCATE','REFERENCES','TRIGGER']"


async def access_findings(ins: Inspection) -> list[Finding]:
    roles = await _roles(ins)
    present = [r for r in API_ROLES if r in roles]
    findings = _role_findings(ins, roles)
    findings += await _connected_role(ins)
    for name in ins.schema.table_names:
        if name in ins.tables:
            findings += await _table_access(ins, name, present)
    findings += await _function_findings(ins, present)
    findings += await _sequence_findings(ins, present)
    return findings


async def _roles(ins: Inspection) -> dict[str, bool]:
    """API role -> whether it bypasses RLS."""
    rows = await ins.conn.fetch("select rolname::text as name, rolbypassrls or rolsuper as by "
                                "from pg_roles where rolname = any($1::text[])", list(API_ROLES))
    return {r["name"]: r["by"] for r in rows}


def _role_findings(ins: Inspection, roles: dict[str, bool]) -> list[Finding]:
    findings = []
    missing = [r for r in API_ROLES if r not in roles]
    if missing:
        findings.append(finding(SECTION, "roles.missing", "note",
                                f"role(s) {listing(missing)} do not exist: the migrations "
                                "create them (Supabase has them)", roles=missing))
    else:
        findings.append(finding(SECTION, "roles.present", "ok",
                                f"roles {listing(API_ROLES)} exist"))
    if roles.get("service_role") is False:
        findings.append(finding(
            SECTION, "roles.service_role_rls", "problem",
            "service_role does not bypass row level security: through Supabase the "
            "publisher's functions would see no posts", blocking=ins.store_kind == "supabase"))
    return findings


async def _connected_role(ins: Inspection) -> list[Finding]:
    row = await ins.conn.fetchrow(
        "select current_user::text as name, r.rolsuper or r.rolbypassrls as bypasses "
        "from pg_roles r where r.rolname = current_user")
    if row is None or row["bypasses"]:
        return []
    return [finding(SECTION, "roles.connected", "note",
                    f"connected as {row['name']}, which is subject to row level security: the "
                    "counts above may leave out rows it cannot see")]


async def _table_access(ins: Inspection, name: str, roles: list[str]) -> list[Finding]:
    table = ins.tables[name]
    product = ins.product_table(name)
    findings = []
    if table.rls:
        findings.append(finding(SECTION, "rls.on", "ok", f"{name}: row level security on",
                                table=name))
    else:
        findings.append(finding(
            SECTION, "rls.off", "note" if product else "problem",
            f"{name}: row level security is off; any role granted the table reads every row",
            table=name))
    policies = await ins.conn.fetch(
        "select policyname::text as name, cmd, roles::text[] as roles from pg_policies "
        "where schemaname = 'public' and tablename = $1 order by policyname", name)
    shown = [f"{p['name']} ({p['cmd'].lower()} to {', '.join(p['roles'])})" for p in policies]
    if product:
        findings.append(finding(
            SECTION, "policies.kept", "note",
            f"we add no RLS policy to your {name}; your policies are kept: "
            f"{listing(shown)}", table=name, policies=[p["name"] for p in policies]))
    elif shown:
        findings.append(finding(SECTION, "policies", "ok", f"{name} policies: {listing(shown)}",
                                table=name, policies=[p["name"] for p in policies]))
    findings += await _grants(ins, name, roles, product)
    return findings


async def _grants(ins: Inspection, name: str, roles: list[str],
                  product: bool) -> list[Finding]:
    # A privilege granted on some columns only shows as "insert (some columns)".
    rows = await ins.conn.fetch(
        f"select r as role, array(select p from unnest({_PRIVILEGES}) p "  # noqa: S608 - constant
        "where has_table_privilege(r, $1::regclass, p)) as privileges, "
        f"array(select p from unnest({_PRIVILEGES}) p "
        "where p in ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES') "
        "and not has_table_privilege(r, $1::regclass, p) "
        "and has_any_column_privilege(r, $1::regclass, p)) as column_privileges "
        "from unnest($2::text[]) r", f"public.{name}", roles)
    granted = {r["role"]: list(r["privileges"]) for r in rows}
    shown = {r["role"]: [p.lower() for p in r["privileges"]]
             + [f"{p.lower()} (some columns)" for p in r["column_privileges"]] for r in rows}
    findings = []
    for role in END_USERS:
        privileges = shown.get(role) or []
        if not privileges:
            continue
        text = f"{role} has {', '.join(privileges)} on {name}"
        if product:
            findings.append(finding(SECTION, "grants.kept", "note",
                                    f"{text} (your grant, kept; your policies decide the rows)",
                                    table=name, role=role))
        elif role == "anon" or name not in USER_FACING:
            findings.append(finding(SECTION, "grants.end_user", "problem",
                                    f"{text}: end users should reach none of it", table=name,
                                    role=role))
        else:
            findings.append(finding(SECTION, "grants.owner", "note",
                                    f"{text} (rows limited by the owner policies)", table=name,
                                    role=role))
    if "service_role" in granted and len(granted["service_role"]) < 4:
        findings.append(finding(
            SECTION, "grants.service_role", "problem",
            f"service_role lacks select/insert/update/delete on {name}: the publisher's "
            "functions fail through Supabase", blocking=ins.store_kind == "supabase",
            table=name))
    if name == "social_accounts":
        findings += await _token_columns(ins, roles)
    return findings


async def _token_columns(ins: Inspection, roles: list[str]) -> list[Finding]:
    columns = [c for c in TOKEN_COLUMNS if c in ins.tables["social_accounts"].columns]
    rows = await ins.conn.fetch(
        "select r as role, c as col from unnest($1::text[]) r, unnest($2::text[]) c "
        "where has_column_privilege(r, 'public.social_accounts'::regclass, c, 'SELECT')",
        [r for r in roles if r in END_USERS], columns)
    findings = [finding(SECTION, "grants.tokens", "problem",
                        f"{r['role']} can read social_accounts.{r['col']}", role=r["role"],
                        column=r["col"]) for r in rows]
    findings += await _tokens_to_come(ins, [c for c in TOKEN_COLUMNS if c not in columns])
    if not rows and columns:
        findings.append(finding(SECTION, "grants.tokens", "ok",
                                "no end-user role can read a token column of social_accounts"))
    return findings


async def _tokens_to_come(ins: Inspection, missing: list[str]) -> list[Finding]:
    """Your social_accounts, granted whole to an end-user role: the token columns the
    migrations will add would be readable through that grant (a column revoke cannot narrow
    a table grant), so it must become a grant of the other columns first."""
    if not missing:
        return []
    present = await _roles(ins)
    rows = await ins.conn.fetch(
        "select r from unnest($1::text[]) r "
        "where has_table_privilege(r, 'public.social_accounts'::regclass, 'SELECT')",
        [r for r in END_USERS if r in present])
    # names from the catalog, quoted by Postgres (quote_ident); the roles are constants
    others = ", ".join(c.ident for c in ins.tables["social_accounts"].columns.values())
    return [finding(
        SECTION, "grants.tokens", "problem",
        f"{r['r']} may select every column of your social_accounts: the token columns the "
        f"migrations add ({listing(missing)}) would be readable by it; grant it your columns "
        "only, before `publisher migrate`", role=r["r"], columns=missing,
        sql=(f"revoke select on public.social_accounts from {r['r']};",  # noqa: S608
             f"grant select ({others}) on public.social_accounts to {r['r']};"))
        for r in rows]


async def _function_findings(ins: Inspection, roles: list[str]) -> list[Finding]:
    rows = await ins.conn.fetch(
        """
        select p.proname::text as name, p.oid::regprocedure::text as signature,
               coalesce(array_to_string(p.proconfig, ','), '') ~ 'search_path=' as fixed_path,
               array(select r from unnest($2::text[]) r
                      where has_function_privilege(r, p.oid, 'EXECUTE')) as executors,
               exists (select 1 from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner)))
                        a where a.grantee = 0 and a.privilege_type = 'EXECUTE') as public_exec
          from pg_proc p
         where p.pronamespace = 'public'::regnamespace and p.proname = any($1::text[])
         order by p.proname
        """, list(ins.schema.functions), roles)
    findings = []
    missing = sorted(set(ins.schema.functions) - {r["name"] for r in rows})
    if missing and ins.migrated:
        findings.append(finding(SECTION, "functions.missing", "problem",
                                f"function(s) {listing(missing)} are missing although the "
                                "migrations are recorded as applied: run `publisher migrate`",
                                blocking=True, functions=missing))
    if not rows:
        return findings
    for role in END_USERS:
        callers = [r["name"] for r in rows if role in r["executors"]]
        if callers:
            findings.append(finding(SECTION, "functions.end_user", "problem",
                                    f"{role} can execute {listing(callers)}", role=role,
                                    functions=callers))
    public = [r["name"] for r in rows if r["public_exec"]]
    if public:
        findings.append(finding(SECTION, "functions.public", "problem",
                                f"PUBLIC (every role) can execute {listing(public)}",
                                functions=public))
    if "service_role" in roles:
        denied = [r["name"] for r in rows if "service_role" not in r["executors"]
                  and r["name"] != "notify_publisher_due"]  # a trigger's function, not called
        if denied:
            findings.append(finding(
                SECTION, "functions.service_role", "problem",
                f"service_role cannot execute {listing(denied)}: the run fails through "
                "Supabase", blocking=ins.store_kind == "supabase", functions=denied))
    mutable = [r["name"] for r in rows if not r["fixed_path"]]
    if mutable:
        findings.append(finding(SECTION, "functions.search_path", "problem",
                                f"{len(mutable)} function(s) without a fixed search_path "
                                f"(Supabase advisor: function_search_path_mutable): "
                                f"{listing(mutable)}", functions=mutable))
    else:
        findings.append(finding(SECTION, "functions.search_path", "ok",
                                f"all {len(rows)} functions have a fixed search_path"))
    if not any(f.level == "problem" for f in findings):
        findings.insert(0, finding(SECTION, "functions.grants", "ok",
                                   f"the {len(rows)} functions are for service_role only"))
    return findings


async def _sequence_findings(ins: Inspection, roles: list[str]) -> list[Finding]:
    rows = await ins.conn.fetch(
        """
        select s.relname::text as name, r as role
          from pg_class s
          join pg_depend d on d.objid = s.oid and d.deptype in ('a', 'i')
          join pg_class t on t.oid = d.refobjid
          cross join unnest($2::text[]) r
         where s.relkind = 'S' and t.relnamespace = 'public'::regnamespace
           and t.relname = any($1::text[])
           and has_sequence_privilege(r, s.oid, 'USAGE,UPDATE')
        """, [t for t in ins.schema.table_names if not ins.product_table(t)],
        [r for r in roles if r in END_USERS])
    return [finding(SECTION, "sequences.end_user", "problem",
                    f"{r['role']} can call nextval on {r['name']}", role=r["role"],
                    sequence=r["name"]) for r in rows]
