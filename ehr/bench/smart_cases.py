"""Provides the authorization server benchmark: the EHR launch round trip and the token endpoint cases.

`manage.py bench_smart` uses this module. The round trip is one app's EHR launch, step by step, over one
keep-alive connection: create the launch (smart.launch.launch_create, in this process, against the served
database), GET /o/authorize/ with `launch`, `aud` and PKCE as the logged-in user (302 with a code), POST
/o/token/ (an RS256 id_token comes back), then the first FHIR read. The token endpoint cases each need a
unique request body (a code, a refresh token, a client assertion with a fresh jti), so their bodies are
generated first and written to a file that wrk's Lua script reads, one body per request.

Every request goes through a `Transport`: `HttpTransport` (http.client, one keep-alive connection) against the
bench server, or `ClientTransport` (Django's test client) in-process for tests and profiling.
"""

import base64
import hashlib
import http.client
import json
import re
import secrets
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode, urlsplit

from ehr.bench.report import CaseResult, Target
from ehr.bench.wrk import done_lua, lua_string, parse_wrk_output, wrk_command

FORM = "application/x-www-form-urlencoded"
REDIRECT_URI = "https://bench-smart.example/callback"
LAUNCH_URI = "https://bench-smart.example/launch"
LAUNCH_SCOPE = "launch openid fhirUser patient/*.rs"
OFFLINE_SCOPE = "launch openid fhirUser offline_access patient/*.rs"
APP_SCOPES = "launch openid fhirUser offline_access patient/*.rs"
BACKEND_SCOPES = "system/Patient.rs"
APP_NAME_PREFIX = "bench_smart "
USERNAME = "bench-smart"
PATIENT_ID = "bench-smart-pat"
PRACTITIONER_ID = "bench-smart-prac"
BACKEND_KID = "bench-rs384"
STEPS = ("launch", "authorize", "token", "fhir_read")

# smart-launcher-v2 (Node, stateless JWTs) measured on this kind of machine (2 cores), as the issue gives them.
REFERENCE_CODE_EXCHANGES_PER_S = 430.0
REFERENCE_LAUNCHES_PER_S = 200.0
REFERENCE_LAUNCH_P50_MS = 4.0
TARGET_LAUNCHES_PER_S = 200.0
TARGET_CONFIDENTIAL_PER_S = 200.0

TOKEN_CASES = ("code", "refresh", "backend", "confidential")
TOKEN_CASE_LABELS = {
    "code": "(a) code exchange, public client + PKCE, RS256 id_token",
    "refresh": "(b) refresh (rotating), public client",
    "backend": "(c) client_credentials, backend, RS384 assertion",
    "confidential": "(d) refresh, confidential client_secret_basic",
}


# ---------------------------------------------------------------- transports


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    cookies: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


class Transport(Protocol):
    def send(
        self, method: str, path: str, *, body: str | None = None, headers: dict[str, str] | None = None
    ) -> Reply: ...


class HttpTransport:
    """One keep-alive HTTP/1.1 connection (reopened once if the server closed it)."""

    def __init__(self, host: str, port: int, timeout: float = 30) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)

    def send(
        self, method: str, path: str, *, body: str | None = None, headers: dict[str, str] | None = None
    ) -> Reply:
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                response = self.conn.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                if attempt == 2:
                    raise
        cookies: dict[str, str] = {}
        for value in response.headers.get_all("Set-Cookie") or []:
            jar = SimpleCookie()
            jar.load(value)
            cookies.update({name: morsel.value for name, morsel in jar.items()})
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data, cookies)

    def close(self) -> None:
        self.conn.close()


class ClientTransport:
    """Django's test client (in-process: tests and profiling)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def send(
        self, method: str, path: str, *, body: str | None = None, headers: dict[str, str] | None = None
    ) -> Reply:
        headers = dict(headers or {})
        headers.pop("Cookie", None)  # the test client keeps its own cookie jar (filled by login)
        content_type = headers.pop("Content-Type", FORM)
        response = self.client.generic(
            method, path, data=body or "", content_type=content_type, headers=headers
        )
        cookies = {name: morsel.value for name, morsel in response.cookies.items()}
        return Reply(
            response.status_code, {k.lower(): v for k, v in response.items()}, response.content, cookies
        )


# ---------------------------------------------------------------- pure helpers


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier (72 characters) and its S256 challenge."""
    verifier = secrets.token_urlsafe(54)
    return verifier, s256(verifier)


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def basic_auth(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def authorize_query(
    *, client_id: str, scope: str, aud: str, challenge: str, launch: str | None = None
) -> str:
    params = {
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI, "scope": scope,
        "state": secrets.token_urlsafe(12), "aud": aud, "code_challenge": challenge,
        "code_challenge_method": "S256",
    }  # fmt: skip
    if launch:
        params["launch"] = launch
    return "/o/authorize/?" + urlencode(params)


def code_from_location(location: str) -> str:
    """The `code` of the redirect back to the app; ValueError if it is not one (e.g. an error redirect)."""
    if not location.startswith(REDIRECT_URI):
        raise ValueError(f"not a redirect to the app: {location[:200]}")
    query = parse_qs(urlsplit(location).query)
    if "code" not in query:
        raise ValueError(f"no code in the redirect: {location[:200]}")
    return query["code"][-1]


def exchange_body(code: str, verifier: str, client_id: str | None) -> str:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier}  # fmt: skip
    if client_id:
        data["client_id"] = client_id
    return urlencode(data)


def refresh_body(refresh_token: str, client_id: str | None) -> str:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if client_id:
        data["client_id"] = client_id
    return urlencode(data)


def client_credentials_body(assertion: str, scope: str = BACKEND_SCOPES) -> str:
    return urlencode({
        "grant_type": "client_credentials", "scope": scope,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    })  # fmt: skip


def client_assertion(
    key: Any, *, client_id: str, token_url: str, kid: str = BACKEND_KID, now: float | None = None
) -> str:
    """An RS384 private_key_jwt assertion with a unique jti, valid four minutes."""
    import jwt

    issued = int(now if now is not None else time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": token_url, "exp": issued + 240, "iat": issued,
              "jti": str(uuid.uuid4())}  # fmt: skip
    return jwt.encode(claims, key, algorithm="RS384", headers={"kid": kid, "typ": "JWT"})


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5 - 1e-9)))
    return ordered[rank - 1]


def login_form_token(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    if not match:
        raise ValueError("The login page has no CSRF token.")
    return match[1]


BODIES_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
{headers}
local bodies_path = {path}
bodies = {{}}
used = 0
init = function(args)
  for line in io.lines(bodies_path) do
    if #line > 0 then bodies[#bodies + 1] = line end
  end
end
request = function()
  if used >= #bodies then
    wrk.thread:stop()
    return wrk.format(nil, nil, nil, bodies[#bodies])
  end
  used = used + 1
  return wrk.format(nil, nil, nil, bodies[used])
end
local threads = {{}}
setup = function(thread) threads[#threads + 1] = thread end
"""
# Also print how many bodies the threads used: a run that used them all is flagged as a lower bound.
BODIES_DONE_LUA = done_lua(
    before='  local n = 0\n  for _, t in ipairs(threads) do n = n + t:get("used") end\n',
    after='  io.write(string.format("SMART_USED %d\\n", n))\n',
)


def bodies_lua(bodies_path: str, headers: dict[str, str] | None = None) -> str:
    """wrk script: POST one line of `bodies_path` per request, each once; stop the thread when used up."""
    extra = "\n".join(f"wrk.headers[ {lua_string(k)} ] = {lua_string(v)}" for k, v in (headers or {}).items())
    return BODIES_LUA.format(headers=extra, path=lua_string(bodies_path)) + BODIES_DONE_LUA


def used_from_output(text: str) -> int | None:
    match = re.search(r"^SMART_USED (\d+)$", text, re.MULTILINE)
    return int(match[1]) if match else None


def bodies_needed(rps_estimate: float, duration_s: float, *, margin: float = 2.0, floor: int = 200) -> int:
    """How many unique bodies a run of `duration_s` at about `rps_estimate` req/s needs, with room to spare."""
    return max(floor, int(rps_estimate * duration_s * margin) + 50)


# ---------------------------------------------------------------- round trip


@dataclass(frozen=True)
class Actors:
    """The user, the apps and the patient the benchmark uses (ids and secrets, no ORM objects)."""

    username: str
    password: str
    patient_id: str
    public_client_id: str
    confidential_client_id: str
    confidential_secret: str
    backend_client_id: str
    backend_key_pem: str
    fhir_base: str  # the `aud` of /authorize: the server's FHIR base URL
    token_url: str  # the `aud` of client assertions: the token endpoint URL as discovery publishes it

    def backend_key(self) -> Any:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        return load_pem_private_key(self.backend_key_pem.encode(), password=None)


class StepError(Exception):
    """A step of the round trip or of input generation answered other than expected."""


def expect(reply: Reply, status: int, step: str) -> Reply:
    if reply.status != status:
        raise StepError(f"{step}: HTTP {reply.status}, expected {status}: {reply.body[:300]!r}")
    return reply


def login(transport: Transport, username: str, password: str) -> str:
    """Sign in through the EHR's login form; the Cookie header value of the session."""
    page = expect(transport.send("GET", "/login/"), 200, "GET /login/")
    csrf = page.cookies.get("csrftoken", "")
    body = urlencode({"username": username, "password": password, "csrfmiddlewaretoken": login_form_token(
        page.body.decode())})  # fmt: skip
    reply = transport.send(
        "POST", "/login/", body=body, headers={"Content-Type": FORM, "Cookie": f"csrftoken={csrf}"}
    )
    expect(reply, 302, "POST /login/")
    session = reply.cookies.get("sessionid")
    if not session:
        raise StepError("POST /login/ set no session cookie (wrong password?)")
    return f"sessionid={session}; csrftoken={csrf}"


def authorize(
    transport: Transport,
    actors: Actors,
    cookie: str,
    *,
    client_id: str,
    scope: str,
    launch: str | None = None,
) -> tuple[str, str]:
    """A code (and its verifier) from GET /o/authorize/ for a pre-authorized app: 302 to the app."""
    verifier, challenge = pkce_pair()
    path = authorize_query(client_id=client_id, scope=scope, aud=actors.fhir_base, challenge=challenge,
                           launch=launch)  # fmt: skip
    reply = expect(transport.send("GET", path, headers={"Cookie": cookie}), 302, "GET /o/authorize/")
    try:
        return code_from_location(reply.headers.get("location", "")), verifier
    except ValueError as error:
        raise StepError(f"GET /o/authorize/: {error}") from error


def token(transport: Transport, body: str, *, basic: str | None = None, step: str = "POST /o/token/") -> dict:
    headers = {"Content-Type": FORM, **({"Authorization": basic} if basic else {})}
    return expect(transport.send("POST", "/o/token/", body=body, headers=headers), 200, step).json()


@dataclass
class RoundTrips:
    """Per-launch durations (seconds) of the whole round trip and of each step."""

    total: list[float] = field(default_factory=list)
    steps: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STEPS})
    wall_s: float = 0.0
    server_cpu_s: float | None = None  # the server processes' CPU over the whole run, when measured

    @property
    def launches_per_s(self) -> float:
        return len(self.total) / self.wall_s if self.wall_s else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "launches": len(self.total),
            "launches_per_s": round(self.launches_per_s, 1),
            "p50_ms": round(percentile(self.total, 50) * 1000, 2),
            "p99_ms": round(percentile(self.total, 99) * 1000, 2),
            "step_p50_ms": {s: round(percentile(v, 50) * 1000, 2) for s, v in self.steps.items()},
            "server_cpu_ms_per_launch": per_request_ms(self.server_cpu_s, len(self.total)),
        }


def per_request_ms(cpu_s: float | None, requests: int) -> float | None:
    """CPU milliseconds per request, None when not measured."""
    return round(cpu_s / requests * 1000, 2) if cpu_s is not None and requests else None


def median_or_none(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 2) if known else None


def launch_round_trips(
    transport: Transport, actors: Actors, cookie: str, *, launches: int,
    create_launch: Callable[[str], str],
) -> RoundTrips:  # fmt: skip
    """`launches` sequential EHR launches of the public pre-authorized app, each step checked and timed."""
    result = RoundTrips()
    clock = time.perf_counter
    started = clock()
    for _ in range(launches):
        t0 = clock()
        launch_id = create_launch(actors.public_client_id)
        t1 = clock()
        code, verifier = authorize(transport, actors, cookie, client_id=actors.public_client_id,
                                   scope=LAUNCH_SCOPE, launch=launch_id)  # fmt: skip
        t2 = clock()
        answer = token(transport, exchange_body(code, verifier, actors.public_client_id))
        if "id_token" not in answer or answer.get("patient") != actors.patient_id:
            raise StepError(f"POST /o/token/: no id_token or wrong patient: {sorted(answer)}")
        t3 = clock()
        read = transport.send("GET", f"/fhir/Patient/{answer['patient']}",
                              headers={"Authorization": f"Bearer {answer['access_token']}",
                                       "Accept": "application/fhir+json"})  # fmt: skip
        expect(read, 200, "GET /fhir/Patient/<id>")
        t4 = clock()
        result.total.append(t4 - t0)
        for name, seconds in zip(STEPS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            result.steps[name].append(seconds)
    result.wall_s = clock() - started
    return result


def round_trips_merge(rounds: list[RoundTrips]) -> dict[str, Any]:
    """Medians over rounds of each round's figures."""
    summaries = [r.summary() for r in rounds]
    merged = {
        key: statistics.median(s[key] for s in summaries) for key in ("launches_per_s", "p50_ms", "p99_ms")
    }
    merged["launches"] = sum(s["launches"] for s in summaries)
    merged["rounds"] = len(summaries)
    merged["step_p50_ms"] = {
        step: statistics.median(s["step_p50_ms"][step] for s in summaries) for step in STEPS
    }
    merged["server_cpu_ms_per_launch"] = median_or_none(s["server_cpu_ms_per_launch"] for s in summaries)
    return merged


# ---------------------------------------------------------------- token endpoint inputs


@dataclass(frozen=True)
class TokenInputs:
    """The request bodies of one token case (one per request) and the headers every request carries."""

    case: str
    bodies: list[str]
    headers: dict[str, str] = field(default_factory=dict)


def _parallel(
    count: int, threads: int, make: Callable[[], Transport], one: Callable[[Transport], str]
) -> list[str]:
    local = threading.local()

    def task(_: int) -> str:
        if not hasattr(local, "transport"):
            local.transport = make()
        return one(local.transport)

    if threads <= 1:  # in the caller's thread: it may hold the only connection that sees its data (tests)
        return [task(n) for n in range(count)]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(task, range(count)))


def token_inputs(
    case: str, count: int, *, actors: Actors, cookie: str, make: Callable[[], Transport],
    create_launch: Callable[[str], str], threads: int = 4,
) -> TokenInputs:  # fmt: skip
    """`count` unique bodies for one token case, generated through /authorize and /token (or signed here).

    Codes come from EHR launches made with `create_launch(client_id)`, called in the calling thread.
    """
    if case in ("code", "refresh", "confidential"):
        confidential = case == "confidential"
        client_id = actors.confidential_client_id if confidential else actors.public_client_id
        basic = basic_auth(client_id, actors.confidential_secret) if confidential else None
        scope = LAUNCH_SCOPE if case == "code" else OFFLINE_SCOPE
        launches = iter([create_launch(client_id) for _ in range(count)])
        lock = threading.Lock()

        def one(t: Transport) -> str:
            with lock:
                launch = next(launches)
            code, verifier = authorize(t, actors, cookie, client_id=client_id, scope=scope, launch=launch)
            if case == "code":
                return exchange_body(code, verifier, client_id)
            answer = token(t, exchange_body(code, verifier, None if basic else client_id), basic=basic)
            if "refresh_token" not in answer:
                raise StepError("code exchange with offline_access returned no refresh_token")
            return refresh_body(answer["refresh_token"], None if basic else client_id)

        bodies = _parallel(count, threads, make, one)
        return TokenInputs(case, bodies, {"Authorization": basic} if basic else {})
    if case == "backend":
        key = actors.backend_key()
        bodies = [
            client_credentials_body(client_assertion(key, client_id=actors.backend_client_id,
                                                     token_url=actors.token_url))
            for _ in range(count)
        ]  # fmt: skip
        return TokenInputs(case, bodies)
    raise ValueError(f"unknown token case {case!r}")


# ---------------------------------------------------------------- wrk


@dataclass(frozen=True)
class TokenRun:
    result: CaseResult
    bodies: int
    used: int | None
    server_cpu_s: float | None = None  # the server processes' CPU during the run, when measured

    @property
    def server_cpu_ms(self) -> float | None:
        """Server CPU per request answered."""
        return per_request_ms(self.server_cpu_s, self.result.requests)

    @property
    def exhausted(self) -> bool:
        return self.used is not None and self.used >= self.bodies


def wrk_token_run(
    *, wrk: str, url: str, inputs: TokenInputs, duration_s: float, connections: int, label: str,
) -> TokenRun:  # fmt: skip
    """Run wrk over the inputs' bodies (each used once) for `duration_s` seconds."""
    with tempfile.TemporaryDirectory(prefix="bench-smart-") as folder:
        bodies = Path(folder) / "bodies.txt"
        bodies.write_text("\n".join(inputs.bodies) + "\n")
        script = Path(folder) / "bodies.lua"
        script.write_text(bodies_lua(str(bodies), inputs.headers))
        command = wrk_command(wrk=wrk, url=url, script_path=str(script), duration_s=duration_s,
                              connections=connections)  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 120)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    measured = parse_wrk_output(done.stdout)
    result = CaseResult(
        key=inputs.case, label=label, rps=measured.rps, p50_ms=measured.p50_ms, p90_ms=measured.p90_ms,
        p99_ms=measured.p99_ms, requests=measured.requests, errors=measured.errors,
    )  # fmt: skip
    return TokenRun(result, len(inputs.bodies), used_from_output(done.stdout))


# ---------------------------------------------------------------- targets


def launch_target(launches_per_s: float, p50_ms: float) -> Target:
    ratio = launches_per_s / REFERENCE_LAUNCHES_PER_S
    return Target(
        f"full EHR launch round trip >= {TARGET_LAUNCHES_PER_S:.0f}/s (one sequential client)",
        launches_per_s >= TARGET_LAUNCHES_PER_S,
        f"ours {launches_per_s:.0f}/s at p50 {p50_ms:.1f} ms; smart-launcher-v2 ~{REFERENCE_LAUNCHES_PER_S:.0f}/s "
        f"at {REFERENCE_LAUNCH_P50_MS:.0f} ms p50; ratio {ratio:.2f}",
    )


def confidential_target(result: CaseResult | None) -> Target:
    name = f"confidential (client_secret_basic) token requests >= {TARGET_CONFIDENTIAL_PER_S:.0f}/s"
    if result is None:
        return Target(name, None, "not measured in this run")
    return Target(
        name, result.rps >= TARGET_CONFIDENTIAL_PER_S and result.errors == 0,
        f"{result.rps:.0f} req/s (p50 {result.p50_ms:.1f} ms), {result.errors} errors",
    )  # fmt: skip


def code_reference_line(result: CaseResult | None) -> Target:
    name = "code exchange vs smart-launcher-v2 (~430/s, RS256 id_tokens) [reference, not a target]"
    if result is None:
        return Target(name, None, "not measured in this run")
    return Target(
        name, None,
        f"ours {result.rps:.0f}/s vs {REFERENCE_CODE_EXCHANGES_PER_S:.0f}/s = "
        f"{result.rps / REFERENCE_CODE_EXCHANGES_PER_S:.2f}",
    )  # fmt: skip


def format_token_table(results: Iterable[tuple[CaseResult, TokenRun | None]]) -> str:
    header = f"{'token case':<52} {'req/s':>7} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'requests':>8} {'errors':>6}"
    lines = [header, "-" * len(header)]
    for case, last in results:
        note = "  (bodies ran out: rate is a lower bound)" if last is not None and last.exhausted else ""
        lines.append(
            f"{case.label:<52} {case.rps:>7.0f} {case.p50_ms:>7.2f} {case.p90_ms:>7.2f} {case.p99_ms:>7.2f} "
            f"{case.requests:>8} {case.errors:>6}{note}"
        )
    return "\n".join(lines)
