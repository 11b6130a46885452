"""The UI's door, for tests: GraphQL over HTTPS, and the access layer misc/scripts/ui-proxy.sh ships.

The proxy runs exactly as a team starts it (the script renders the templates and starts nginx
as a daemon with its own pid file); only the ports, the state dir and the certificate (a
self-signed one the script makes) are the test's.
"""

import base64
import getpass
import json
import ssl
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from deploy_assets.config import REPO_ROOT
from deploy_assets.local import stack as local_stack

SCRIPT = REPO_ROOT / "misc" / "scripts" / "ui-proxy.sh"
LOCATION = "deploy_assets"
REPOSITORY = "__repository__"  # the name Dagster gives the repository of a @dg.definitions module

LAUNCH_RUN = """
mutation Launch($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId jobName status } }
    ... on Error { message }
  }
}"""

JOBS = """
query Jobs($selector: RepositorySelector!) {
  repositoryOrError(repositorySelector: $selector) {
    __typename
    ... on Repository { jobs { name } }
    ... on Error { message }
  }
}"""


@dataclass(frozen=True)
class Answer:
    """An HTTP answer of the GraphQL endpoint: status, a header we check, and the JSON body."""

    status: int
    www_authenticate: str | None
    body: dict | None


def graphql(
    url: str,
    query: str,
    variables: dict,
    cafile: Path | None = None,
    credentials: tuple[str, str] | None = None,
    timeout: float = 30,
) -> Answer:
    """POST one GraphQL operation; TLS is verified against `cafile` (the proxy's own cert)."""
    headers = {"Content-Type": "application/json"}
    if credentials:
        headers["Authorization"] = (
            "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
        )
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers=headers,
        method="POST",
    )
    context = ssl.create_default_context(cafile=str(cafile)) if cafile else None
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return Answer(
                response.status, response.headers.get("WWW-Authenticate"), json.load(response)
            )
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            parsed = json.loads(body) if body else None
        except ValueError:  # nginx's own 401 page is HTML
            parsed = None
        return Answer(exc.code, exc.headers.get("WWW-Authenticate"), parsed)


def launch_params(job: str, run_config: dict) -> dict:
    return {
        "executionParams": {
            "selector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": REPOSITORY,
                "jobName": job,
            },
            "runConfigData": run_config,
        }
    }


def job_names(url: str) -> list[str]:
    """The jobs the webserver serves once its code location loaded; [] until then."""
    try:
        answer = graphql(
            url,
            JOBS,
            {"selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}},
            timeout=10,
        )
    except OSError:
        return []
    repo = ((answer.body or {}).get("data") or {}).get("repositoryOrError") or {}
    return [job["name"] for job in repo.get("jobs", [])]


@dataclass(frozen=True)
class Proxy:
    """A started ui-proxy.sh: its HTTPS URLs, the cert that verifies them, its state dir."""

    url: str
    read_only_url: str
    cert: Path
    state_dir: Path
    env: dict[str, str]

    @property
    def pidfile(self) -> Path:
        return self.state_dir / "nginx.pid"


def ui_proxy(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def proxy_env(
    state_dir: Path, upstream: str, read_only_upstream: str, base: dict[str, str]
) -> dict[str, str]:
    """The script's settings for a test: free ports, the test's dir; workers as our own user,
    since the test's tmp dir is private to it (production keeps the default, www-data)."""
    return {
        **base,
        "UI_PROXY_DIR": str(state_dir),
        "UI_PROXY_LISTEN": f"127.0.0.1:{local_stack.free_port()}",
        "UI_PROXY_UPSTREAM": upstream,
        "UI_PROXY_READONLY_LISTEN": f"127.0.0.1:{local_stack.free_port()}",
        "UI_PROXY_READONLY_UPSTREAM": read_only_upstream,
        "UI_PROXY_USER": getpass.getuser(),
    }


def start_proxy(env: dict[str, str], user: str, password: str) -> Proxy:
    """Cert, one user, start: the three commands of the README, then a running nginx."""
    for args, stdin in (
        (("self-signed-cert",), None),
        (("passwd", user), password),
        (("start",), None),
    ):
        done = ui_proxy(env, *args, stdin=stdin)
        assert done.returncode == 0, (
            f"ui-proxy.sh {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
        )
    state = Path(env["UI_PROXY_DIR"])
    return Proxy(
        f"https://{env['UI_PROXY_LISTEN']}",
        f"https://{env['UI_PROXY_READONLY_LISTEN']}",
        state / "tls" / "cert.pem",
        state,
        env,
    )
