"""Instagram: the adapter (adapter.py) and its rules and error answers (errors.py)."""

from publisher.platforms.instagram.adapter import InstagramAdapter

__all__ = ["InstagramAdapter"]
