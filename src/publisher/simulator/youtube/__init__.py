"""The simulated YouTube videos.insert resumable upload and videos.list (handlers.py)."""

from publisher.simulator.youtube.handlers import YouTube

__all__ = ["YouTube"]
