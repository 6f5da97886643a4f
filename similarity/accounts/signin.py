"""Password sign-in for ``launch(auth=...)``: constant-time checks, failed sign-ins rate-limited per name
and per client.

Gradio calls the auth callable with only ``(name, password)``. The client address reaches it through
``ClientAddressMiddleware`` (a pure ASGI middleware, so the login route runs in the context it set).
"""

from __future__ import annotations

import contextvars
import logging
import math
from collections.abc import Callable
from typing import Any

from ..ratelimit import RateLimiter
from .users import Users

log = logging.getLogger(__name__)

AUTH_MESSAGE = "Sign in to search the catalog and keep your saved products."
FAILURES_PER_NAME = 5  # per 5 minutes: slows guessing one account's password
FAILURES_PER_CLIENT = 20  # per 5 minutes: slows one address trying many names
WINDOW_S = 300.0
_CLIENT: contextvars.ContextVar[str] = contextvars.ContextVar("similarity_signin_client", default="unknown")


class ClientAddressMiddleware:
    """Records each HTTP request's client address for the sign-in check."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        token = _CLIENT.set(str(client[0]) if client else "unknown")
        try:
            await self.app(scope, receive, send)
        finally:
            _CLIENT.reset(token)


def current_client() -> str:
    return _CLIENT.get()


class SignIn:
    """``SignIn(users)(name, password) -> bool``. A rate-limited attempt is refused without checking the
    password (Gradio then says "Incorrect credentials"); only failed attempts count against the limits."""

    def __init__(
        self,
        users: Users,
        *,
        per_name: RateLimiter | None = None,
        per_client: RateLimiter | None = None,
        client: Callable[[], str] = current_client,
    ) -> None:
        self.users = users
        self.per_name = per_name or RateLimiter(FAILURES_PER_NAME, WINDOW_S)
        self.per_client = per_client or RateLimiter(FAILURES_PER_CLIENT, WINDOW_S)
        self._client = client

    def __repr__(self) -> str:
        return f"SignIn({self.users!r})"

    def __call__(self, name: str, password: str) -> bool:
        name = name if isinstance(name, str) else ""
        name_key, client_key = f"name:{name[:64]}", f"client:{self._client()}"
        wait = max(self.per_name.waiting(name_key), self.per_client.waiting(client_key))
        if wait:
            log.warning("Sign-in refused: too many failed attempts; try again in %d s", math.ceil(wait))
            return False
        if self.users.verify(name, password):
            return True
        self.per_name.retry_after(name_key)  # record the failure
        self.per_client.retry_after(client_key)
        log.info("A sign-in failed (wrong name or password)")
        return False


def launch_auth(users: Users, signin: SignIn | None = None) -> dict[str, Any]:
    """Keyword arguments for ``demo.launch`` that put the whole app (page and API) behind sign-in."""
    from starlette.middleware import Middleware

    return {
        "auth": signin or SignIn(users),
        "auth_message": AUTH_MESSAGE,
        "ssr_mode": False,  # Gradio's server-side rendering does not go through the sign-in page
        "app_kwargs": {"middleware": [Middleware(ClientAddressMiddleware)]},
    }
