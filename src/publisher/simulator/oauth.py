"""The token refresh endpoints of Google, LinkedIn and Instagram.

POST /token                  Google: form grant_type=refresh_token, refresh_token,
                             client_id, client_secret -> {access_token, expires_in: 3599,
                             token_type: "Bearer", scope} (no new refresh token)
POST /oauth/v2/accessToken   LinkedIn: the same form -> {access_token, expires_in: 5184000,
                             refresh_token (the same one), refresh_token_expires_in, scope}
GET  /_ig/refresh_access_token  Instagram Login, on graph.instagram.com (``meta.INSTAGRAM_HOST``):
                             grant_type=ig_refresh_token&access_token=<an IG token>
                             -> {access_token, token_type: "bearer", expires_in: 5183944};
                             a Facebook token is refused (190 "Cannot parse access token")
GET  /tokeninfo?access_token=   Google: what a live access token is (azp, scope, expires_in);
                             a revoked or expired one is 400 invalid_token "Invalid Value"

A refresh (or Instagram) token containing ``revoked`` or ``expired`` is refused in each
provider's shape. Every call is counted per token in ``/_sim/stats`` ``token_refreshes``.
Issued access tokens are accepted by their own API (an Instagram one, ``IGAAsim<n>``, only
on graph.instagram.com); a Google one keeps the channel of its refresh token
(``ya29.sim<n>-token-<channel>``, see ``youtube.channel_of``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

from publisher.simulator.base import Request, Response, Route, json_response, route
from publisher.simulator.meta import graph as meta
from publisher.simulator.state import SimState

GOOGLE_SCOPE = "https://www.googleapis.com/auth/youtube.upload"
LINKEDIN_SCOPE = "w_member_social,w_organization_social"
LINKEDIN_ACCESS_SECONDS = 60 * 86400
LINKEDIN_REFRESH_SECONDS = 365 * 86400
INSTAGRAM_SECONDS = 5183944


def oauth_error(status: int, error: str, description: str) -> Response:
    """An RFC 6749 error body."""
    return json_response({"error": error, "error_description": description}, status)


def channel_of(token: str) -> str:
    """The YouTube channel a Google token acts for: the text after its last ``token-``."""
    _, marker, suffix = token.rpartition("token-")
    return suffix if marker and suffix else token


class OAuth:
    """The three refresh endpoints, served whichever platforms are selected."""

    name = "oauth"

    def __init__(self, state: SimState) -> None:
        """Count refreshes in ``state``."""
        self.state = state
        self.issued = 0
        self.first_seen: dict[str, float] = {}
        state.on_reset.append(self.first_seen.clear)

    def routes(self) -> Sequence[Route]:
        """Google, LinkedIn and Instagram refresh."""
        return [
            route(self, "POST", r"/token", self.google),
            route(self, "POST", r"/oauth/v2/accessToken", self.linkedin),
            route(self, "GET", r"/tokeninfo", self.google_tokeninfo),
            route(
                self, "GET", rf"{re.escape(meta.INSTAGRAM_HOST)}/refresh_access_token",
                self.instagram,
            ),
        ]

    def authenticate(self, request: Request) -> Response | None:
        """The endpoints check their own credentials."""
        return None

    def account_of(self, request: Request) -> str:
        """The token being refreshed."""
        params = request.params
        return params.get("refresh_token") or params.get("access_token") or ""

    def fault(self, kind: str, request: Request) -> Response:
        """Token endpoints draw no faults; a server error if asked anyway."""
        return oauth_error(500, "server_error", "simulated fault")

    def not_found(self, request: Request) -> Response:
        """Unknown token endpoint."""
        return oauth_error(404, "not_found", request.path)

    def decorate(self, request: Request, response: Response) -> None:
        """No extra headers."""

    def _new_token(self, prefix: str) -> str:
        self.issued += 1
        return f"{prefix}{self.issued}"

    def _refresh_form(self, request: Request) -> tuple[str, Response | None]:
        """The refresh token, or an error for a malformed refresh request."""
        params = request.params
        token = params.get("refresh_token", "")
        if token:
            self.state.refreshed(token)
        if params.get("grant_type") != "refresh_token":
            return token, oauth_error(
                400, "unsupported_grant_type", "Invalid grant_type: expected refresh_token"
            )
        if not token:
            return token, oauth_error(
                400, "invalid_request", "Missing required parameter: refresh_token"
            )
        if not params.get("client_id"):
            return token, oauth_error(401, "invalid_client", "The OAuth client was not found.")
        return token, None

    def google(self, request: Request) -> Response:
        """``POST /token``: a new access token for the refresh token's channel."""
        token, error = self._refresh_form(request)
        if error is not None:
            return error
        if "revoked" in token or "expired" in token:
            return oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
        access = f"{self._new_token('ya29.sim')}-token-{channel_of(token)}"
        return json_response(
            {
                "access_token": access,
                "expires_in": 3599,
                "token_type": "Bearer",
                "scope": GOOGLE_SCOPE,
            }
        )

    def google_tokeninfo(self, request: Request) -> Response:
        """``GET /tokeninfo?access_token=``: Google's answer about an access token (the
        simulator's YouTube refuses the same tokens: ``revoked``/``expired`` in them, or
        expired by the ``upload_token_expired`` fault)."""
        token = request.params.get("access_token", "")
        if not token:
            return oauth_error(
                400, "invalid_request", "Either access_token, id_token, or token_handle required"
            )
        if "revoked" in token or "expired" in token or token in self.state.expired_tokens:
            return oauth_error(400, "invalid_token", "Invalid Value")
        return json_response(
            {
                "azp": "simulated-client",
                "aud": "simulated-client",
                "scope": GOOGLE_SCOPE,
                "exp": str(int(time.time()) + 3599),
                "expires_in": "3599",
                "access_type": "offline",
            }
        )

    def linkedin(self, request: Request) -> Response:
        """``POST /oauth/v2/accessToken``: a new access token; the refresh TTL keeps running."""
        token, error = self._refresh_form(request)
        if error is not None:
            return error
        if "revoked" in token or "expired" in token:
            return oauth_error(
                400,
                "invalid_grant",
                "The provided authorization grant or refresh token is invalid, expired or revoked.",
            )
        first = self.first_seen.setdefault(token, time.time())
        remaining = max(0, LINKEDIN_REFRESH_SECONDS - int(time.time() - first))
        return json_response(
            {
                "access_token": self._new_token("AQVsim"),
                "expires_in": LINKEDIN_ACCESS_SECONDS,
                "refresh_token": token,
                "refresh_token_expires_in": remaining,
                "scope": LINKEDIN_SCOPE,
            }
        )

    def instagram(self, request: Request) -> Response:
        """``GET graph.instagram.com/refresh_access_token``: a new 60-day token for a valid
        long-lived Instagram Login one; refuses Facebook Login tokens, as the real one does."""
        token = meta.token_of(request)
        if token:
            self.state.refreshed(token)
        if request.params.get("grant_type") != "ig_refresh_token":
            return meta.bad_param("(#100) grant_type must be ig_refresh_token")
        denied = meta.authenticate(request)
        if denied is not None:
            return denied
        return json_response(
            {
                "access_token": self._new_token("IGAAsim"),
                "token_type": "bearer",
                "expires_in": INSTAGRAM_SECONDS,
            }
        )
