"""Facebook Pages: the adapter (adapter.py); its Graph errors are Meta's shared ones (meta/)."""

from publisher.platforms.facebook.adapter import FacebookAdapter

__all__ = ["FacebookAdapter"]
