"""Who is asking: the user key of a request, and how this app instance signs people in.

User keys: ``hf:<username>`` (Hugging Face sign-in on a Space), ``local:<name>`` (the users file).
Anyone else is a guest, whose saved products live in their own browser.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from ..config import Settings
from ..store.base import mask_url
from .users import Users, UsersFile


@dataclasses.dataclass(frozen=True)
class Accounts:
    """``oauth``: render "Sign in with Hugging Face" (only on a Space); ``users``: the users file's users
    (at least one means the whole app needs a password); ``browser_key``: the key of guests' browser storage."""

    oauth: bool = False
    users: Users | None = None
    browser_key: str = "similarity-saved"

    @classmethod
    def from_settings(cls, settings: Settings, users: Users | None = None) -> Accounts:
        if users is None and settings.users_file:
            users = UsersFile(settings.users_file).load()
        # Fixed per catalog, so guests' saves survive a restart. Gradio hands this key to the browser, so it
        # protects nothing: what the browser sends back is checked like any other input.
        digest = hashlib.sha256(f"similarity-saved:{mask_url(settings.store_url)}".encode()).hexdigest()[:24]
        return cls(oauth=settings.on_spaces, users=users, browser_key=digest)

    @property
    def passwords(self) -> bool:
        return self.users is not None and len(self.users) > 0


def user_key(request: Any = None, profile: Any = None) -> str | None:
    """The signed-in user's key, or None for a guest."""
    username = getattr(profile, "username", None) if profile is not None else None
    if isinstance(username, str) and username:
        return f"hf:{username}"
    name = getattr(request, "username", None) if request is not None else None
    return f"local:{name}" if isinstance(name, str) and name else None


def display_name(key: str | None) -> str:
    return key.split(":", 1)[1] if key else "guest"
