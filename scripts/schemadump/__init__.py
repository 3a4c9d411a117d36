"""The current SQL contract, readable: supabase/schemas/*.sql written from the catalog.

    build.py     embedded Postgres; databases from the migrations, from the declarative
                 files, and upgraded from the migrations as they were when last deployed
    catalog.py   a database's catalog as comparable text, and a readable diff of two
    layout.py    which file of supabase/schemas/ each table and function goes in
    render.py    the text of those files (pg_dump for tables, pg_get_functiondef for
                 functions, grants from the ACLs)
    contract.py  the migration that carries what only edited old files had
    __main__.py  `scripts/schema-dump`: regenerates, then checks
"""
