"""YouTube: the adapter (adapter.py), its resumable upload (upload.py), its errors (errors.py)."""

from publisher.platforms.youtube.adapter import YouTubeAdapter

__all__ = ["YouTubeAdapter"]
