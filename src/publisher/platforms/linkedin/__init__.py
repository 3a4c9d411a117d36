"""LinkedIn: the adapter (adapter.py) and its error table (errors.py)."""

from publisher.platforms.linkedin.adapter import LinkedInAdapter

__all__ = ["LinkedInAdapter"]
