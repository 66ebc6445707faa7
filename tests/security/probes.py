"""Probe artifacts: model code an admin approved, trying to reach what the console holds.

Each try is one name in `CHECKS`; a probe reports, per name, what happened: the exception it
got (the right answer) or "LEAKED" (it read, listed or connected); a write reports "WROTE"
and the test checks whether the file appeared on the host. The validation probe raises
its findings at load time (so they come back in the upload's refusal); the serving probe is a
working regression model that runs the tries when it predicts the row [100 + i, 0, 0, 0] and
answers 1.0 for a leak, 0.0 for a refusal.
"""

from __future__ import annotations

from pathlib import Path

# Environment names no model process may see.
FORBIDDEN_ENV = (
    "SECRET_KEY",
    "CONSOLE_ADMIN_PASSWORD",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CACHE_URL",
    "DJANGO_SETTINGS_MODULE",
    "CONSOLE_VAR_DIR",
    "AWS_SECRET_ACCESS_KEY",
)

_TRIES = """
import json, os, socket

def _read(path):
    with open(path, "rb") as f:
        f.read(16)

def _write(path):
    # Whether it worked says little (a private /tmp may hold the same path): the test looks
    # for the file on the host.
    with open(path, "w") as f:
        f.write("pwned")
    return "WROTE"

def _list(path):
    os.listdir(path)

def _connect(port):
    socket.create_connection(("127.0.0.1", port), timeout=3).close()

def _env(_):
    leaked = [name for name in FORBIDDEN if name in os.environ]
    return "LEAKED " + ",".join(leaked) if leaked else "NoSecretInEnvironment"

def run(check):
    what, argument = CHECKS[check]
    try:
        result = {"read": _read, "write": _write, "list": _list, "connect": _connect,
                  "env": _env}[what](argument)
    except Exception as exc:
        return type(exc).__name__
    return result or "LEAKED"
"""


def checks(var_dir: Path, other_artifact: Path, listener_port: int) -> dict[str, list]:
    """What a probe tries: read the secret key, the database, another deployment's artifact,
    the runtime's state and the cache; write into var/; connect to PostgreSQL and to a port
    the test listens on; find secrets in its environment."""
    return {
        # (not named secret_key: a reason that says "secret_key: ..." is redacted as a secret)
        "key_file": ["read", str(var_dir / "secret_key")],
        "database": ["read", str(var_dir / "console.sqlite3")],
        "other_artifact": ["read", str(other_artifact)],
        "runtime_state": ["read", str(var_dir / "runtime" / "probe-serving" / "state.json")],
        "cache": ["list", str(var_dir / "cache")],
        "write_var": ["write", str(var_dir / "pwned")],
        "postgres": ["connect", 5432],
        "listener": ["connect", listener_port],
        "environment": ["env", None],
    }


def _prelude(tries: dict[str, list]) -> str:
    return f"CHECKS = {tries!r}\nFORBIDDEN = {list(FORBIDDEN_ENV)!r}\n{_TRIES}"


class _Call:
    def __init__(self, function, *args) -> None:
        self.function = function
        self.args = args

    def __reduce__(self):
        return (self.function, self.args)


def validation_probe(tries: dict[str, list], sleep_marker: int) -> object:
    """Unpickled (builtins.exec approved): runs every try, leaves a `setsid sleep` behind, and
    raises its findings as `PROBE{json}`."""
    code = _prelude(tries) + (
        "import subprocess\n"
        f"subprocess.Popen(['/usr/bin/sleep', '{sleep_marker}'], start_new_session=True)\n"
        "raise ValueError('PROBE' + json.dumps({name: run(name) for name in CHECKS}))\n"
    )
    return _Call(exec, code, {})


def serving_probe(tries: dict[str, list], secret_to_print: str) -> object:
    """Unpickled (builtins.eval approved) into a regression model with 4 features. Row
    [100 + i, ...] runs try i; row [200, ...] prints `secret_to_print` and an API-token-shaped
    string to its output and exits, as a model that dumps what it found would."""
    code = _prelude(tries) + (
        "import sys\n"
        "import numpy as np\n"
        "from sklearn.base import BaseEstimator, RegressorMixin\n"
        "NAMES = list(CHECKS)\n"
        "class Probe(RegressorMixin, BaseEstimator):\n"
        "    n_features_in_ = 4\n"
        "    def predict(self, X):\n"
        "        out = []\n"
        "        for row in np.asarray(X):\n"
        "            if row[0] == 200:\n"
        f"                print('found {secret_to_print} and token ' + 'ab12' * 10, "
        "file=sys.stderr, flush=True)\n"
        "                os._exit(3)\n"
        "            i = int(row[0]) - 100\n"
        "            out.append(0.0 if not 0 <= i < len(NAMES) else\n"
        "                       (1.0 if run(NAMES[i]).startswith('LEAKED') else 0.0))\n"
        "        return np.asarray(out)\n"
        "model = Probe()\n"
    )
    return _Call(eval, f"(lambda g: (exec({code!r}, g), g['model'])[1])({{}})")
