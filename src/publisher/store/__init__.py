"""The store: the contract's operations, over whichever transport the settings name."""

from __future__ import annotations

from publisher.store.store import Store, open_store

__all__ = ["Store", "open_store"]
