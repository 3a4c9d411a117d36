"""The simulated Instagram content-publishing API (handlers.py)."""

from publisher.simulator.instagram.handlers import Instagram

__all__ = ["Instagram"]
