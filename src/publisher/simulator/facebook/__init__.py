"""The simulated Facebook Pages API (handlers.py); Graph helpers shared with Instagram in meta/."""

from publisher.simulator.facebook.handlers import Facebook

__all__ = ["Facebook"]
