"""The users file, password hashing, sign-in rate limits and the ``users`` command line."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from gradio_client import Client

import app
from similarity.accounts import Accounts, SignIn, Users, UsersFile, launch_auth, parse_users, user_key
from similarity.accounts.cli import read_password
from similarity.accounts.signin import current_client
from similarity.accounts.users import PasswordHash
from similarity.config import Settings
from similarity.errors import ConfigError, SimilarityError
from similarity.ratelimit import RateLimiter
from similarity.search import SearchService
from similarity.store import open_store
from similarity.ui import launch_options

from .helpers import TINY_ENV
from .test_app_handlers import seed_catalog, tiny_settings

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-Horse-9"


def test_hashes_are_salted_per_user_and_carry_their_parameters():
    one, two = PasswordHash.create(PASSWORD), PasswordHash.create(PASSWORD)
    assert one.encode() != two.encode()  # a random salt each time
    assert one.encode().startswith("scrypt$n=16384,r=8,p=1$")
    assert PasswordHash.parse(one.encode()).verify(PASSWORD)
    assert not one.verify(PASSWORD + "x") and not one.verify("") and not one.verify(None)  # type: ignore[arg-type]
    assert PASSWORD not in one.encode() and "salt" not in repr(one) and one.encode() not in repr(one)


def test_users_verify_names_and_passwords_and_unknown_names_cost_a_real_check():
    users = Users().with_user("ann", PASSWORD).with_user("bob", "another-Pass-1")
    assert users.verify("ann", PASSWORD) and not users.verify("ann", "another-Pass-1")
    assert not users.verify("carl", PASSWORD) and not users.verify(None, PASSWORD)  # type: ignore[arg-type]
    decoy = users._decoy_hash()  # what an unknown name is checked against: the same scrypt cost
    assert (decoy.n, decoy.r, decoy.p) == (16384, 8, 1)
    assert users.names() == ["ann", "bob"] and "ann" in users and repr(users) == "Users(2 users)"


@pytest.mark.parametrize(
    ("name", "password", "message"),
    [("bad:name", PASSWORD, "user name"), ("", PASSWORD, "user name"), ("ann", "short", "8 to 1024"),
     ("ann", "two\nlines-here", "line break")],
)  # fmt: skip
def test_bad_names_and_passwords_are_refused(name, password, message):
    with pytest.raises(SimilarityError, match=message):
        Users().with_user(name, password)


def test_file_is_written_atomically_with_mode_0600_and_read_back(tmp_path):
    file = UsersFile(tmp_path / "deep" / "users")
    file.save(Users().with_user("ann", PASSWORD))
    assert stat.S_IMODE(os.stat(file.path).st_mode) == 0o600
    assert [p.name for p in file.path.parent.iterdir()] == ["users"]  # no temporary file left behind
    text = file.path.read_text()
    assert PASSWORD not in text and text.count("\nann:scrypt$") == 1
    assert file.load().verify("ann", PASSWORD)


def test_a_malformed_line_is_a_start_up_error_naming_the_line_and_not_its_content(tmp_path):
    good = Users().with_user("ann", PASSWORD)
    lines = ["# comment", "", *good.lines(), "bob:scrypt$n=16384,r=8,p=1$bm90LWJhc2U2NA==$SECRETHASHVALUE!!"]
    with pytest.raises(ConfigError, match=r"line 4: the salt or digest is not base64") as caught:
        parse_users("\n".join(lines))
    assert "SECRETHASHVALUE" not in str(caught.value)
    twice = f"{next(good.lines())}\n{next(good.lines())}"
    cases = [("no colon here", "name:hash"), ("ann:md5$abc", "not an scrypt"),
             ("ann:scrypt$n=3,r=8,p=1$AAAAAAAAAAA=$AAAAAAAAAAAAAAAAAAAAAA==", "out of range"),
             (twice, "line 2: the user 'ann' appears twice")]  # fmt: skip
    for text, reason in cases:
        with pytest.raises(ConfigError, match=reason):
            parse_users(text)
    with pytest.raises(ConfigError, match="does not exist"):
        UsersFile(tmp_path / "missing").load()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_signin(clock: Clock, client: list[str]) -> SignIn:
    users = Users().with_user("ann", PASSWORD).with_user("bob", "bob-Password-2")
    return SignIn(
        users,
        per_name=RateLimiter(3, 60, clock=clock),
        per_client=RateLimiter(5, 60, clock=clock),
        client=lambda: client[0],
    )


def test_failed_sign_ins_are_limited_per_name():
    clock, client = Clock(), ["10.0.0.1"]
    signin = make_signin(clock, client)
    assert signin("ann", PASSWORD) and signin("ann", PASSWORD)  # successes do not count
    for _ in range(3):
        assert not signin("ann", "guess-guess")
    client[0] = "10.0.0.2"
    assert not signin("ann", PASSWORD)  # the account is locked for everyone, even with the right password
    assert signin("bob", "bob-Password-2")  # other names are not
    clock.now += 61
    assert signin("ann", PASSWORD)


def test_failed_sign_ins_are_limited_per_client():
    clock, client = Clock(), ["10.0.0.1"]
    signin = make_signin(clock, client)
    for n in range(5):
        assert not signin(f"user{n}", "guess-guess")  # many names from one address
    assert not signin("ann", PASSWORD)
    client[0] = "10.0.0.2"
    assert signin("ann", PASSWORD)


def test_the_login_page_is_rate_limited_through_the_real_app(tiny_embedder):
    store = open_store("memory://")
    seed_catalog(store, tiny_embedder)
    users = Users().with_user("ann", PASSWORD)
    demo = app.build_demo(SearchService(store, tiny_embedder, None, tiny_settings()))
    seen: list[str] = []  # the client address the middleware hands to the sign-in check

    def client() -> str:
        seen.append(current_client())
        return seen[-1]

    options = {**launch_options(), **launch_auth(users, SignIn(users, client=client))}
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **options)
    try:
        assert Client(url, auth=("ann", PASSWORD), verbose=False).predict(text="bag", top_k=1, api_name="/search_text")
        for _ in range(5):
            with pytest.raises(ValueError, match="Could not login"):
                Client(url, auth=("ann", "wrong-password"), verbose=False)
        with pytest.raises(ValueError, match="Could not login"):  # now refused even with the right one
            Client(url, auth=("ann", PASSWORD), verbose=False)
        assert len(seen) == 7 and set(seen) == {"127.0.0.1"}
    finally:
        demo.close()


def test_user_keys():
    class Profile:
        username = "ann-hf"

    class Request:
        username = "ann"

    assert user_key(Request(), Profile()) == "hf:ann-hf"
    assert user_key(Request(), None) == "local:ann"
    assert user_key(None, None) is None and user_key(object(), None) is None


def test_accounts_from_settings(tmp_path):
    file = UsersFile(tmp_path / "users")
    file.save(Users().with_user("ann", PASSWORD))
    accounts = Accounts.from_settings(Settings(users_file=str(file.path)))
    assert accounts.passwords and not accounts.oauth
    assert Accounts.from_settings(Settings(system="spaces")).oauth
    assert not Accounts.from_settings(Settings()).passwords
    file.save(Users())
    assert not Accounts.from_settings(Settings(users_file=str(file.path))).passwords  # an empty file: open app


def run_cli(*args: str, stdin: str = "", env_file: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **TINY_ENV}
    env.pop("SIMILARITY_USERS_FILE", None)
    if env_file:
        env["SIMILARITY_USERS_FILE"] = str(env_file)
    return subprocess.run(
        [sys.executable, "-m", "similarity", *args], input=stdin, capture_output=True, text=True, env=env,
        cwd=ROOT, timeout=120,
    )  # fmt: skip


def test_users_command_line_adds_lists_and_removes(tmp_path):
    path = tmp_path / "users"
    added = run_cli("users", "add", "ann", stdin=f"{PASSWORD}\n", env_file=path)
    assert added.returncode == 0, added.stderr
    assert "Added ann" in added.stdout
    assert run_cli("users", "--file", str(path), "add", "bob", stdin="bob-Password-2\n").returncode == 0
    changed = run_cli("users", "add", "ann", stdin="new-Password-3", env_file=path)  # no newline: fine too
    assert "Changed the password of ann" in changed.stdout
    assert run_cli("users", "list", env_file=path).stdout.split() == ["ann", "bob"]
    users = UsersFile(path).load()
    assert users.verify("ann", "new-Password-3") and users.verify("bob", "bob-Password-2")
    assert run_cli("users", "remove", "bob", env_file=path).returncode == 0
    assert run_cli("users", "list", env_file=path).stdout.split() == ["ann"]
    for result in (added, changed):
        assert PASSWORD not in result.stdout + result.stderr and "new-Password-3" not in result.stdout + result.stderr


def test_users_command_line_errors(tmp_path):
    path = tmp_path / "users"
    short = run_cli("users", "add", "ann", stdin="short\n", env_file=path)
    assert short.returncode == 1 and "8 to 1024" in short.stderr and "short" not in short.stderr.split(":")[-1]
    assert not path.exists()
    missing = run_cli("users", "remove", "ann", env_file=path)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert run_cli("users", "list").returncode == 2  # no file named at all
    path.write_text("ann:not-a-hash\n")
    broken = run_cli("users", "list", env_file=path)
    assert broken.returncode == 2 and "line 1" in broken.stderr and "not-a-hash" not in broken.stderr


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_is_prompted_twice_without_echo(monkeypatch):
    import getpass

    answers = iter([PASSWORD, PASSWORD, PASSWORD, "typo-" + PASSWORD])
    prompts: list[str] = []
    monkeypatch.setattr(getpass, "getpass", lambda prompt: prompts.append(prompt) or next(answers))
    assert read_password(Terminal()) == PASSWORD
    assert prompts == ["Password: ", "Password (again): "]
    with pytest.raises(SimilarityError, match="differ"):
        read_password(Terminal())
    assert read_password(io.StringIO(f"{PASSWORD}\nnext line\n")) == PASSWORD  # a pipe: one line


def test_app_start_up_stops_on_a_malformed_users_file(tmp_path):
    path = tmp_path / "users"
    UsersFile(path).save(Users().with_user("ann", PASSWORD))
    with path.open("a") as handle:
        handle.write("bob\n")
    env = {**os.environ, **TINY_ENV, "SIMILARITY_USERS_FILE": str(path), "SIMILARITY_STORE": "memory://"}
    done = subprocess.run([sys.executable, "app.py"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 2
    assert "line 3" in done.stderr and "scrypt$" not in done.stderr


def test_share_without_users_warns_once(capsys):
    assert app.sign_in_options(Accounts(), share=True) == {}
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "anyone with the share link can search" in lines[0]
    assert app.sign_in_options(Accounts(), share=False) == {} and not capsys.readouterr().err
    options = app.sign_in_options(Accounts(users=Users().with_user("ann", PASSWORD)), share=True)
    assert callable(options["auth"]) and options["ssr_mode"] is False and not capsys.readouterr().err
