"""``python -m similarity users add|remove|list [NAME]``: manage the users file (SIMILARITY_USERS_FILE).

``add`` reads the password as one line from stdin when stdin is not a terminal (scripts), and prompts
twice when it is. The password is never echoed, printed or logged.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any, TextIO

from ..config import Settings
from ..errors import ConfigError, SimilarityError
from .users import MAX_PASSWORD, UsersFile, check_name


def add_users_parser(commands: Any) -> None:
    """Register ``users`` on the main parser's subcommands."""
    users = commands.add_parser("users", help="manage the users file (sign-in): add, remove, list")
    users.add_argument("--file", help="the users file (default: SIMILARITY_USERS_FILE)")
    actions = users.add_subparsers(dest="users_command", required=True)
    add = actions.add_parser("add", help="add a user or change a password (password on stdin, or prompted)")
    add.add_argument("name")
    remove = actions.add_parser("remove", help="remove a user")
    remove.add_argument("name")
    actions.add_parser("list", help="list the user names")


def run_users(args: argparse.Namespace, settings: Settings, stdin: TextIO | None = None) -> int:
    path = args.file or settings.users_file
    if not path:
        raise ConfigError("Name the users file: set SIMILARITY_USERS_FILE or pass --file PATH.")
    users_file = UsersFile(path)
    if args.users_command == "list":
        for name in users_file.load(missing_ok=True).names():
            print(name)
        return 0
    name = check_name(args.name)
    users = users_file.load(missing_ok=args.users_command == "add")
    if args.users_command == "remove":
        users_file.save(users.without(name))
        print(f"Removed {name} from {users_file.path}.")
        return 0
    changed = name in users
    users_file.save(users.with_user(name, read_password(stdin or sys.stdin)))
    print(f"{'Changed the password of' if changed else 'Added'} {name} in {users_file.path}.")
    return 0


def read_password(stdin: TextIO) -> str:
    if not stdin.isatty():
        line = stdin.readline(MAX_PASSWORD + 2)
        return line[:-1] if line.endswith("\n") else line
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password (again): ") != first:
        raise SimilarityError("The two passwords differ; nothing was changed.")
    return first
