"""What the migrations in supabase/migrations define, read from the files themselves.

`publisher doctor` compares a database's catalog with this, so the list of our tables,
columns and functions is written once (in the migrations) and never copied into Python.
tests/test_doctor.py checks the parse against a freshly migrated database's catalog.

It also knows the product columns that often mean what one of ours means under another
name (`scheduled_time` for `scheduled_at`, `media_url` for `media_urls`, ...), and the
statement that fills ours from theirs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# Every status the publisher writes or reads (the check on created_content when we create it).
POST_STATES = ("draft", "scheduled", "publishing", "retrying", "published", "failed",
               "needs_review", "expired", "canceled")
CLAIMABLE_STATES = ("scheduled", "retrying")
# Product statuses that are ours under another name: the statement maps them.
STATUS_SYNONYMS = {"posted": "published", "sent": "published", "live": "published",
                   "pending": "scheduled", "queued": "scheduled", "error": "failed",
                   "cancelled": "canceled"}
# Our tables the product may already have: migrations add columns to them, never drop.
ADOPTABLE_TABLES = ("created_content", "social_accounts")
LEDGER_TABLE = "publisher_schema_migrations"  # the old ledger (publisher.store.migrations)

_COMMENT = re.compile(r"--[^\n]*")
_TABLE = re.compile(r"\bcreate\s+table\s+(?:if\s+not\s+exists\s+)?(?:public\.)?(\w+)\s*\(",
                    re.IGNORECASE)
_ALTER = re.compile(r"\balter\s+table\s+(?:if\s+exists\s+)?(?:only\s+)?(?:public\.)?(\w+)\s+"
                    r"(add\s+column\b[^;]*);", re.IGNORECASE)
_ADD = re.compile(r"^add\s+column\s+(?:if\s+not\s+exists\s+)?(\w+)\s+(.*)$",
                  re.IGNORECASE | re.DOTALL)
_FUNCTION = re.compile(r"\bcreate\s+(?:or\s+replace\s+)?function\s+(?:public\.)?(\w+)\s*\(",
                       re.IGNORECASE)
_CONSTRAINT_WORDS = {"constraint", "primary", "unique", "check", "foreign", "exclude", "like"}
_TYPE_ENDS = {"not", "null", "default", "generated", "references", "check", "primary",
              "unique", "constraint", "collate"}
# Short type names as format_type() spells them.
_TYPE_NAMES = {"timestamptz": "timestamp with time zone",
               "timestamp": "timestamp without time zone", "int": "integer",
               "int4": "integer", "int8": "bigint", "int2": "smallint", "bool": "boolean",
               "float8": "double precision", "varchar": "character varying"}


@dataclass(frozen=True, kw_only=True, slots=True)
class Column:
    name: str
    type: str         # as format_type() spells it, e.g. "timestamp with time zone"
    definition: str   # as the migration writes it, e.g. "smallint not null default 0"


@dataclass(frozen=True, kw_only=True, slots=True)
class OurSchema:
    """The tables (with columns, in file order) and functions the migrations define."""

    tables: dict[str, dict[str, Column]]
    functions: tuple[str, ...]

    @property
    def table_names(self) -> tuple[str, ...]:
        return (*self.tables, LEDGER_TABLE)


def read_schema(folder: Path) -> OurSchema:
    """Parses every migration file in the folder, in the order they are applied."""
    paths = sorted(folder.glob("*.sql"))
    tables: dict[str, dict[str, Column]] = {}
    functions: list[str] = []
    for path in paths:
        text = _COMMENT.sub("", path.read_text())
        for match in _TABLE.finditer(text):
            body = _parenthesized(text, match.end() - 1)
            columns = tables.setdefault(match.group(1).lower(), {})
            for part in _top_level_split(body):
                column = _column(part)
                if column is not None:
                    columns.setdefault(column.name, column)
        for match in _ALTER.finditer(text):
            columns = tables.setdefault(match.group(1).lower(), {})
            for clause in _top_level_split(match.group(2)):
                added = _ADD.match(clause.strip())
                if added:
                    column = _column(f"{added.group(1)} {added.group(2)}")
                    if column is not None:
                        columns.setdefault(column.name, column)
        functions.extend(m.group(1).lower() for m in _FUNCTION.finditer(text))
    return OurSchema(tables=tables, functions=tuple(dict.fromkeys(functions)))


def canonical_type(declared: str) -> str:
    """A declared type as format_type() spells it: timestamptz -> timestamp with time zone."""
    text = " ".join(declared.lower().split())
    suffix = ""
    while text.endswith("[]"):
        text, suffix = text[:-2].strip(), suffix + "[]"
    return _TYPE_NAMES.get(text, text) + suffix


def _parenthesized(text: str, start: int) -> str:
    """The text between the parenthesis at `start` and its match."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return text[start + 1:i]
    return text[start + 1:]


def _top_level_split(text: str) -> list[str]:
    """Splits on commas outside parentheses and quotes."""
    parts: list[str] = []
    current: list[str] = []
    depth, quoted = 0, False
    for char in text:
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and char == ",":
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _column(definition: str) -> Column | None:
    words = definition.split()
    if len(words) < 2 or words[0].lower() in _CONSTRAINT_WORDS:
        return None
    type_words = []
    for word in words[1:]:
        if word.lower() in _TYPE_ENDS:
            break
        type_words.append(word)
    return Column(name=words[0].strip('"').lower(), type=canonical_type(" ".join(type_words)),
                  definition=" ".join(words[1:]))


# --- product columns that look like ours -------------------------------------------------

# Our column -> product names that usually mean the same (lower case, most likely first).
LOOKALIKES: dict[str, tuple[str, ...]] = {
    "scheduled_at": ("scheduled_time", "scheduled_for", "schedule_at", "publish_at",
                     "publish_time", "post_at", "send_at", "run_at", "scheduled_date"),
    "scheduled_timezone": ("timezone", "time_zone", "tz", "user_timezone"),
    "media_urls": ("media_url", "image_url", "video_url", "media", "images", "image_urls",
                   "attachments"),
    "content": ("caption", "text", "body", "message", "post_text"),
    "post_type": ("type", "kind", "content_type", "media_type"),
    "title": ("headline", "subject"),
    "link_url": ("link", "url"),
    "account_id": ("social_account_id", "connected_account_id"),
    "platform_post_id": ("external_post_id", "remote_post_id", "external_id"),
    "platform_url": ("post_url", "permalink", "published_url", "external_url"),
    "published_at": ("posted_at", "sent_at"),
    "last_error": ("error", "error_message", "failure_reason"),
}
_TEXT_TYPES = ("text", "character varying", "character")


@dataclass(frozen=True, kw_only=True, slots=True)
class Backfill:
    """Fills one of our columns from a product column: `statement`, and the conditions
    that count the rows it would change (`target_empty` only once our column exists)."""

    target: str
    source: str
    statement: str
    source_set: str
    target_empty: str
    caveat: str | None = None


def backfill(target: str, source: str, source_ident: str, source_type: str,
             has_timezone_source: bool) -> Backfill | None:
    """The statement that fills `target` from the product's `source`, or None when the
    types need a conversion a person should write."""
    src, base = source_ident, source_type.split("(")[0].strip()
    caveat = None
    if target == "scheduled_at" and base == "timestamp without time zone":
        # A wall-clock time: ours is scheduled_local, resolved with scheduled_timezone.
        target, value, empty = "scheduled_local", src, "scheduled_at is null and " \
            "scheduled_local is null"
        if not has_timezone_source:
            caveat = "a wall-clock time: scheduled_timezone must be filled too"
    elif target in ("scheduled_at", "published_at") and base == "timestamp with time zone":
        value, empty = src, f"{target} is null"
    elif target == "media_urls" and base in _TEXT_TYPES:
        value, empty = f"array[{src}]", "media_urls = '{}'"
    elif target == "media_urls" and base in ("text[]", "character varying[]"):
        value, empty = f"{src}::text[]", "media_urls = '{}'"
    elif target == "media_urls" and base == "jsonb":
        value, empty = f"array(select jsonb_array_elements_text({src}))", "media_urls = '{}'"
        return Backfill(target=target, source=source,
                        statement=_update(target, value, f"{empty} and jsonb_typeof({src}) "
                                          "= 'array'"),
                        source_set=f"jsonb_typeof({src}) = 'array'", target_empty=empty)
    elif target == "post_type" and base in _TEXT_TYPES:
        value, empty = src, "post_type = 'text'"
        caveat = "check its values are ours (text, link, photo, photos, video, image, reel, ...)"
    elif target == "account_id" and base == "uuid":
        # Only ids that are social_accounts rows: the foreign key refuses others.
        value = src
        empty = f"account_id is null and {src} in (select id from public.social_accounts)"  # noqa: S608 - catalog identifier
        caveat = "after the accounts are in social_accounts with the same ids"
    elif target in ("content", "scheduled_timezone", "title", "link_url", "platform_post_id",
                    "platform_url", "last_error") and base in _TEXT_TYPES:
        value, empty = src, f"{target} is null"
    else:
        return None
    condition = f"{src} is not null"
    return Backfill(target=target, source=source,
                    statement=_update(target, value, f"{empty} and {condition}"),
                    source_set=condition, target_empty=empty, caveat=caveat)


def _update(target: str, value: str, where: str) -> str:
    # Shown to the operator, never run by doctor; identifiers are quote_ident'ed.
    return f"update public.created_content set {target} = {value} where {where};"  # noqa: S608
