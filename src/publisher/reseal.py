"""`publisher tokens reseal`: every stored token sealed with the current key.

After a key rotation (the new key in ENCRYPTION_KEY, the old one in
ENCRYPTION_KEYS_PREVIOUS), each token in social_accounts (access_token_encrypted,
refresh_token_encrypted) that names another key is opened and sealed again with
ENCRYPTION_KEY. With import columns, plaintext tokens the product keeps in columns of its
own in social_accounts are sealed into ours; with clear_plaintext, each plaintext value is
nulled in the same statement that stores it sealed.

It reads pages of `batch` accounts in id order (list_account_tokens) and writes each page
in one statement (reseal_account_tokens), committed on its own and fenced by
compare-and-set. So a second run changes nothing (every token names the current key); an
interrupted run is simply started again (what it wrote counts as already current); a token
a worker refreshed meanwhile, or the product wrote anew, is left alone (skipped: run
again). The key never leaves this process, and nothing printed or logged holds a token:
accounts are named by id and platform.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

from publisher.crypto import TokenCipher, sealed_key_id
from publisher.errors import ConfigError, TokenError
from publisher.settings import Settings
from publisher.store import Store

log = logging.getLogger("publisher.reseal")

Slot = Literal["access", "refresh"]
SLOTS: tuple[Slot, ...] = ("access", "refresh")
DEFAULT_BATCH = 500
DETAIL_LINES = 50   # accounts named per kind of problem; the rest are counted


@dataclass(frozen=True, kw_only=True, slots=True)
class StoredTokens:
    """One account's tokens as list_account_tokens returns them (never in a repr)."""

    id: str
    platform: str
    access: str | None = field(repr=False)          # our columns, exactly as stored
    refresh: str | None = field(repr=False)
    plain_access: str | None = field(repr=False)    # the product's named columns
    plain_refresh: str | None = field(repr=False)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StoredTokens:
        def text(key: str) -> str | None:
            value = row.get(key)
            return None if value is None else str(value)

        return cls(id=str(row["id"]), platform=str(row.get("platform") or "?"),
                   access=text("access"), refresh=text("refresh"),
                   plain_access=text("plain_access"), plain_refresh=text("plain_refresh"))

    def sealed(self, slot: Slot) -> str | None:
        return self.access if slot == "access" else self.refresh

    def plain(self, slot: Slot) -> str | None:
        return self.plain_access if slot == "access" else self.plain_refresh


Outcome = Literal["resealed", "imported", "current", "unopenable", "skipped", "none"]


@dataclass(frozen=True, slots=True)
class SlotPlan:
    """What to do with one token of one account."""

    outcome: Outcome
    new: str | None = field(default=None, repr=False)   # sealed value to write
    clear: bool = False                                  # null the plaintext column
    reason: str | None = None                            # for unopenable and skipped

    @property
    def writes(self) -> bool:
        return self.new is not None or self.clear


@dataclass(kw_only=True)
class ResealReport:
    """Counts per token (an account has up to two), and the accounts to look at."""

    current_key_id: str
    dry_run: bool = False
    resealed: int = 0
    imported: int = 0
    current: int = 0
    cleared: int = 0
    unopenable: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def add(self, row: StoredTokens, slot: Slot, plan: SlotPlan, *, lost: bool) -> None:
        label = f"account {row.id} ({row.platform}), {slot} token"
        if lost and plan.writes:
            self.skipped.append(f"{label}: changed while this ran, left as it is (run again)")
            return
        if plan.outcome == "resealed":
            self.resealed += 1
        elif plan.outcome == "imported":
            self.imported += 1
        elif plan.outcome == "current":
            self.current += 1
        elif plan.outcome == "unopenable":
            self.unopenable.append(f"{label}: {plan.reason}")
        elif plan.outcome == "skipped":
            self.skipped.append(f"{label}: {plan.reason}")
        self.cleared += int(plan.clear)

    @property
    def exit_code(self) -> int:
        """1 while a token could not be opened or was skipped: something is left to do."""
        return 1 if self.unopenable or self.skipped else 0

    def lines(self) -> list[str]:
        verb = "would be " if self.dry_run else ""
        head = (f"tokens: {self.resealed} {verb}resealed, {self.imported} {verb}imported, "
                f"{self.current} already current, {len(self.unopenable)} could not open, "
                f"{len(self.skipped)} skipped")
        if self.cleared:
            head += f"; {self.cleared} plaintext value(s) {verb}cleared"
        lines = [f"{head} (current key {self.current_key_id})"]
        for kind, notes in (("could not open", self.unopenable), ("skipped", self.skipped)):
            lines += [f"{kind}: {note}" for note in notes[:DETAIL_LINES]]
            if len(notes) > DETAIL_LINES:
                lines.append(f"{kind}: ... and {len(notes) - DETAIL_LINES} more")
        if self.dry_run:
            lines.append("dry run: nothing was written")
        return lines


def plan_slot(sealed: str | None, plain: str | None, cipher: TokenCipher, *,
              column: str | None, clear: bool) -> SlotPlan:
    """The plan for one token: `sealed` from our column, `plain` from the product's."""
    if not sealed:
        if plain is None:
            return SlotPlan("none")
        return SlotPlan("imported", new=cipher.encrypt(plain), clear=clear)
    is_current = sealed_key_id(sealed) == cipher.current_key_id
    if is_current and plain is None:
        return SlotPlan("current")  # by its key id: nothing to open
    try:
        opened = cipher.decrypt(sealed)
    except TokenError as exc:  # its message names a key id at most, never the token
        return SlotPlan("unopenable", reason=str(exc))
    if plain is not None and plain != opened:
        # Which one is newer cannot be told: keep both for the operator to settle.
        return SlotPlan("skipped", reason=f"{column} holds a different token than the sealed "
                                          "one; neither was changed")
    return SlotPlan("current" if is_current else "resealed",
                    new=None if is_current else cipher.encrypt(opened),
                    clear=clear and plain is not None)


def _sha256(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()


def plan_row(row: StoredTokens, cipher: TokenCipher, *, access_column: str | None,
             refresh_column: str | None,
             clear: bool) -> tuple[dict[str, Any] | None, dict[Slot, SlotPlan]]:
    """The write for one account (None when nothing changes) and each token's plan."""
    columns: dict[Slot, str | None] = {"access": access_column, "refresh": refresh_column}
    plans = {slot: plan_slot(row.sealed(slot), row.plain(slot), cipher,
                             column=columns[slot], clear=clear) for slot in SLOTS}
    if not any(p.writes for p in plans.values()):
        return None, plans
    item: dict[str, Any] = {"id": row.id, "access": row.access, "refresh": row.refresh}
    for slot in SLOTS:
        item[f"new_{slot}"] = plans[slot].new
        item[f"clear_{slot}"] = plans[slot].clear
        # The fence on the plaintext column: a digest, so the plaintext is not sent back.
        item[f"plain_{slot}_sha256"] = _sha256(row.plain(slot))
    return item, plans


def check_options(*, batch: int, access_column: str | None, refresh_column: str | None,
                  clear_plaintext: bool) -> None:
    if batch < 1:
        raise ConfigError("--batch must be at least 1")
    if clear_plaintext and access_column is None and refresh_column is None:
        raise ConfigError("--clear-plaintext needs --import-plaintext-column or "
                          "--import-refresh-column")
    if access_column is not None and access_column == refresh_column:
        raise ConfigError("--import-plaintext-column and --import-refresh-column must name "
                          "different columns")


async def reseal(store: Store, cipher: TokenCipher, *, batch: int = DEFAULT_BATCH,
                 dry_run: bool = False, access_column: str | None = None,
                 refresh_column: str | None = None,
                 clear_plaintext: bool = False) -> ResealReport:
    """Re-seals (and imports) every stored token, page by page; see the module docstring."""
    check_options(batch=batch, access_column=access_column, refresh_column=refresh_column,
                  clear_plaintext=clear_plaintext)
    report = ResealReport(current_key_id=cipher.current_key_id, dry_run=dry_run)
    columns = {"access_column": access_column, "refresh_column": refresh_column}
    after: str | None = None
    while True:
        page = await store.list_account_tokens(after, batch, **columns)
        if page.get("problem"):
            raise ConfigError(str(page["problem"]))
        rows = [StoredTokens.from_row(r) for r in page.get("accounts") or []]
        if not rows:
            return report
        planned = [(row, *plan_row(row, cipher, clear=clear_plaintext, **columns))
                   for row in rows]
        items = [item for _, item, _ in planned if item is not None]
        lost: set[str] = set()
        if items and not dry_run:
            written = await store.reseal_account_tokens(items, **columns)
            lost = {str(i) for i in written.get("changed") or []}
        for row, _, plans in planned:
            for slot, plan in plans.items():
                report.add(row, slot, plan, lost=row.id in lost)
        log.info("reseal: %d account(s) read, %d written%s", len(rows),
                 0 if dry_run else len(items) - len(lost), " (dry run)" if dry_run else "")
        if len(rows) < batch:
            return report
        after = rows[-1].id


async def reseal_command(settings: Settings, *, dry_run: bool, batch: int,
                         access_column: str | None, refresh_column: str | None,
                         clear_plaintext: bool, out: TextIO) -> int:
    """The CLI's `tokens reseal`: prints the counts; exit 1 while something is left."""
    from publisher.app import load_cipher
    from publisher.store import open_store

    check_options(batch=batch, access_column=access_column, refresh_column=refresh_column,
                  clear_plaintext=clear_plaintext)
    cipher = load_cipher(settings)
    store = await open_store(settings)
    try:
        report = await reseal(store, cipher, batch=batch, dry_run=dry_run,
                              access_column=access_column, refresh_column=refresh_column,
                              clear_plaintext=clear_plaintext)
    finally:
        await store.close()
    for line in report.lines():
        print(line, file=out)
    return report.exit_code
