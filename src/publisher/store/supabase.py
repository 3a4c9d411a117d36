"""Supabase transport: the contract functions over PostgREST rpc (supabase-py, async).

PostgREST takes named parameters as one JSON object and returns the function's value as
JSON; every contract function returns one value, so max-rows truncation cannot bite.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from publisher.errors import StoreError
from publisher.store.contract import FUNCTIONS


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


class SupabaseTransport:
    def __init__(self, client: Any, http: httpx.AsyncClient | None = None) -> None:
        self._client = client
        self._http = http

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
            raise StoreError(f"cannot create the Supabase client: {type(exc).__name__}") from None
        return cls(client, http)

    async def call(self, function: str, params: Mapping[str, Any]) -> Any:
        spec = FUNCTIONS[function]
        body = {name: _jsonable(params[name]) for name, _ in spec.params}
        try:
            response = await self._client.rpc(function, body).execute()
        except Exception as exc:  # postgrest APIError, httpx transport errors
            raise StoreError(f"{function} failed through Supabase: {type(exc).__name__}: "
                             f"{getattr(exc, 'message', '') or ''}".rstrip(": ")) from exc
        return response.data

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
