"""Accounts: the users file, password sign-in, and who is asking (user keys)."""

from __future__ import annotations

from .identity import Accounts, display_name, user_key
from .signin import SignIn, launch_auth
from .users import PasswordHash, Users, UsersFile, parse_users

__all__ = [
    "Accounts",
    "PasswordHash",
    "SignIn",
    "Users",
    "UsersFile",
    "display_name",
    "launch_auth",
    "parse_users",
    "user_key",
]
