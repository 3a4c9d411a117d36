"""Supabase transport: the contract functions over PostgREST rpc (supabase-py, async).

PostgREST takes named parameters as one JSON object and returns the function's value as
JSON; every contract function returns one value, so max-rows truncation cannot bite.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from publisher.errors import ConfigError, StoreError
from publisher.store.contract import FUNCTIONS


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


# Refusals that name a setting, not an outage: PostgREST's JWT errors, the gateway's
# "Invalid API key", permission denied (a key of another role).
_KEY_CODES = frozenset({"PGRST301", "PGRST302", "42501", "401"})


def _refused_setting(exc: Exception) -> str | None:
    """The setting a failed call points at, when it is one; None for anything else."""
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return "SUPABASE_URL"
    if isinstance(exc, httpx.LocalProtocolError):  # e.g. a header value httpx refuses
        return "SUPABASE_SERVICE_ROLE_KEY"
    code = getattr(exc, "code", None)
    message = str(getattr(exc, "message", "") or "")
    if code in _KEY_CODES or "Invalid API key" in message:
        return "SUPABASE_SERVICE_ROLE_KEY"
    return None


class SupabaseTransport:
    def __init__(self, client: Any, http: httpx.AsyncClient | None = None) -> None:
        self._client = client
        self._http = http
        # Until the first answer, a refused URL or key is a settings error (exit 2): the
        # first call is the start-up key check, before anything is claimed.
        self._answered = False

    @classmethod
    async def connect(cls, url: str, service_role_key: str, *,
                      http_timeout: float = 60.0) -> SupabaseTransport:
        from supabase import AsyncClientOptions, acreate_client  # heavy: only for Supabase

        # Our own HTTP client: supabase-py's timeout option is deprecated, and we close it.
        http = httpx.AsyncClient(timeout=http_timeout)
        try:
            client = await acreate_client(url, service_role_key,
                                          options=AsyncClientOptions(httpx_client=http))
        except Exception as exc:  # supabase-py raises plain exceptions for bad URLs/keys
            await http.aclose()
            # Nothing is sent yet: only the URL or the key can be at fault.
            said = " ".join(str(getattr(exc, "message", "") or exc).split())
            if service_role_key:
                said = said.replace(service_role_key, "***")
            raise ConfigError(f"SUPABASE_URL or SUPABASE_SERVICE_ROLE_KEY was refused by the "
                              f"Supabase client: {type(exc).__name__}: {said[:200]}".rstrip(": ")
                              ) from None
        return cls(client, http)

    async def call(self, function: str, params: Mapping[str, Any]) -> Any:
        spec = FUNCTIONS[function]
        body = {name: _jsonable(params[name]) for name, _ in spec.params}
        try:
            response = await self._client.rpc(function, body).execute()
        except Exception as exc:  # postgrest APIError, httpx transport errors
            detail = f"{type(exc).__name__}: {getattr(exc, 'message', '') or ''}".rstrip(": ")
            setting = None if self._answered else _refused_setting(exc)
            if setting:
                raise ConfigError(f"{setting} was refused: {function} through Supabase "
                                  f"failed with {detail}") from None
            raise StoreError(f"{function} failed through Supabase: {detail}") from exc
        self._answered = True
        return response.data

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
