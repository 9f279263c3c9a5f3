"""Schemathesis hooks for scripts/fuzz.sh (loaded through SCHEMATHESIS_HOOKS).

They keep the fuzzed user signed in, so that the run reaches the handlers behind the
authentication checks instead of collecting 401s once a fuzzed logout has ended a login:

- Cookie names: docs/openapi.yaml names the cookies as a production server sets them
  (`__Secure-refresh_token`, `__Host-session`); the fuzz server runs on plain http with
  LATCHKEY_COOKIE_SECURE=false, where they are `refresh_token` and `session`. The
  `[auth.openapi.*]` credentials are renamed just before each request.
- Live credentials: the refresh cookie rotates at every fuzzed refresh, and fuzzed logouts end
  the refresh family and the classic session. The configured (initial) cookie values are
  replaced by the current ones; a 200 refresh hands over its new cookie; a 401 for our own
  cookie signs in again (`POST /auth/login`, `POST /session/login`). The session's CSRF token
  follows the session: a request to `PUT /session/data` that carries an `X-CSRF-Token` gets the
  live one (a request without the header still tests the 403).
- Protected identities: `POST /auth/logout-all`, `DELETE /auth/sessions/{id}` and
  `POST /auth/password` (its per-user throttle) run with a third user's token, and the admin
  routes never act on the fuzzing users themselves (their
  ids are swapped for an unknown one, a 404): a fuzzed disable, role change or revocation of
  the fuzzed user or the admin would turn the rest of the run into 401s and 403s.
- Counting: the number of requests made is written to $FUZZ_REQUEST_COUNT_FILE at exit.
"""

import atexit
import os
import sys
import threading
import uuid

import requests
import schemathesis
from requests.adapters import HTTPAdapter

DEV_NAMES = {
    "__Secure-refresh_token": "refresh_token",
    "__Host-session": "session",
}

BASE = os.environ["FUZZ_BASE_URL"]
LOGIN = {"username": os.environ["FUZZ_USERNAME"], "password": os.environ["FUZZ_PASSWORD"]}
INITIAL = {
    "refresh": os.environ["FUZZ_REFRESH_TOKEN"],
    "session": os.environ["FUZZ_SESSION"],
}
MAIN_TOKEN = "Bearer " + os.environ["FUZZ_ACCESS_TOKEN"]
OTHER_TOKEN = "Bearer " + os.environ["FUZZ_OTHER_TOKEN"]
PROTECTED_IDS = set(os.environ["FUZZ_PROTECTED_IDS"].split(","))
ISOLATED = {"POST /auth/logout-all", "DELETE /auth/sessions/{id}", "POST /auth/password"}

_lock = threading.Lock()
_live = {
    "refresh": INITIAL["refresh"],
    "session": INITIAL["session"],
    "csrf": os.environ["FUZZ_CSRF_TOKEN"],
}
_requests = 0


def _write_count():
    path = os.environ.get("FUZZ_REQUEST_COUNT_FILE")
    if path:
        with open(path, "w") as f:
            f.write(f"{_requests}\n")


atexit.register(_write_count)


class _FromOtherLoopbackAddress(HTTPAdapter):
    """Connects from 127.0.0.2: the fuzzed logins (all failures, from 127.0.0.1) reach the
    per-address login throttle during the run, and that must not refuse these sign-ins."""

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = ("127.0.0.2", 0)
        super().init_poolmanager(*args, **kwargs)


_session = requests.Session()
_session.mount("http://", _FromOtherLoopbackAddress())


def _sign_in_again(kind):
    """A new refresh family (`refresh`) or classic session (`session`) for the fuzzed user."""
    path = "/auth/login" if kind == "refresh" else "/session/login"
    try:
        response = _session.post(BASE + path, json=LOGIN, timeout=10)
    except requests.RequestException as e:
        print(f"hooks.py: signing in again failed: {e}", file=sys.stderr)
        return
    if response.status_code != 200:
        # Keep the dead value: the answers stay documented 401s, with less coverage.
        print(f"hooks.py: POST {path} answered {response.status_code}", file=sys.stderr)
        return
    if kind == "refresh":
        _live["refresh"] = response.cookies.get("refresh_token", _live["refresh"])
    else:
        _live["session"] = response.cookies.get("session", _live["session"])
        _live["csrf"] = response.json().get("csrf_token", _live["csrf"])


@schemathesis.hook
def before_call(context, case, kwargs):
    global _requests
    label = case.operation.label
    with _lock:
        _requests += 1
        cookies = case.cookies
        if cookies:
            if cookies.get("__Secure-refresh_token") == INITIAL["refresh"]:
                cookies["__Secure-refresh_token"] = _live["refresh"]
            if cookies.get("__Host-session") == INITIAL["session"]:
                cookies["__Host-session"] = _live["session"]
            for documented, served in DEV_NAMES.items():
                if documented in cookies:
                    cookies[served] = cookies.pop(documented)
        headers = case.headers
        if label == "PUT /session/data" and headers and "X-CSRF-Token" in headers:
            headers["X-CSRF-Token"] = _live["csrf"]
        if label in ISOLATED and headers and headers.get("Authorization") == MAIN_TOKEN:
            headers["Authorization"] = OTHER_TOKEN
        if label.split(" ", 1)[1].startswith("/admin/users/{id}"):
            if str(case.path_parameters.get("id")) in PROTECTED_IDS:
                case.path_parameters["id"] = str(uuid.uuid4())


@schemathesis.hook
def after_call(context, case, response):
    label = case.operation.label
    cookies = case.cookies or {}
    with _lock:
        if label == "POST /auth/refresh" and cookies.get("refresh_token") == _live["refresh"]:
            if response.status_code == 200:
                for line in response.headers.get("set-cookie", []):
                    name, _, rest = line.partition("=")
                    value = rest.split(";", 1)[0]
                    if name.strip() == "refresh_token" and value:
                        _live["refresh"] = value
            elif response.status_code == 401:
                _sign_in_again("refresh")
        elif (
            label == "POST /auth/logout"
            and cookies.get("refresh_token") == _live["refresh"]
            and response.status_code == 204
        ):
            _sign_in_again("refresh")
        elif label.split(" ", 1)[1].startswith("/session/"):
            if cookies.get("session") == _live["session"] and response.status_code == 401:
                _sign_in_again("session")
            elif label == "POST /session/logout" and response.status_code == 204 and (
                cookies.get("session") == _live["session"]
            ):
                _sign_in_again("session")
