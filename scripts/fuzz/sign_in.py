"""Signs in the users scripts/fuzz.sh fuzzes with, and prints their credentials as
`NAME=value` lines (standard library only).

Usage: sign_in.py BASE_URL USERNAME PASSWORD ADMIN_USERNAME ADMIN_PASSWORD

- registers USERNAME and USERNAME-other through the API (POST /auth/register, expects 201);
- logs it in twice (POST /auth/login): the first login's access token is the Bearer token,
  the second login's refresh cookie is the refresh credential (its own family, so that the
  fuzzed refreshes, reuse detection and logout end that family and not the token's);
- starts a classic session (POST /session/login): the session cookie and its CSRF token;
- logs in USERNAME-other, whose token the hooks use for logout-all, session deletion and
  password changes;
- logs in the admin (made beforehand with `latchkey user create --role admin`);
- prints the three users' ids, which the hooks keep the admin routes from acting on.
"""

import http.cookies
import json
import sys
import urllib.error
import urllib.request


def post(base, path, body, want):
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, headers, text = response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        status, headers, text = e.code, e.headers, e.read()
    if status != want:
        sys.exit(f"sign_in.py: POST {path} answered {status}, not {want}: {text[:500]!r}")
    cookies = http.cookies.SimpleCookie()
    for line in headers.get_all("Set-Cookie") or []:
        cookies.load(line)
    return json.loads(text), {k: v.value for k, v in cookies.items()}


def main():
    base, username, password, admin, admin_password = sys.argv[1:6]
    credentials = {"username": username, "password": password}
    user, _ = post(base, "/auth/register", credentials, 201)
    other = {"username": username + "-other", "password": password}
    other_user, _ = post(base, "/auth/register", other, 201)
    other_token, _ = post(base, "/auth/login", other, 200)
    token, _ = post(base, "/auth/login", credentials, 200)
    _, cookies = post(base, "/auth/login", credentials, 200)
    session, session_cookies = post(base, "/session/login", credentials, 200)
    admin_token, _ = post(
        base, "/auth/login", {"username": admin, "password": admin_password}, 200
    )
    print(f"FUZZ_ACCESS_TOKEN={token['access_token']}")
    print(f"FUZZ_REFRESH_TOKEN={cookies['refresh_token']}")
    print(f"FUZZ_SESSION={session_cookies['session']}")
    print(f"FUZZ_CSRF_TOKEN={session['csrf_token']}")
    print(f"FUZZ_ADMIN_TOKEN={admin_token['access_token']}")
    print(f"FUZZ_OTHER_TOKEN={other_token['access_token']}")
    ids = [user["user"]["id"], other_user["user"]["id"], admin_token["user"]["id"]]
    print(f"FUZZ_PROTECTED_IDS={','.join(ids)}")


if __name__ == "__main__":
    main()
