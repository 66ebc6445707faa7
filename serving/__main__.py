"""`python -m serving --config PATH [--host H] [--port P] [--grpc-port G]`: load one model and
serve it over REST on P and the Open Inference Protocol's gRPC on G (0: no gRPC).

A bad config or an unloadable artifact ends the process with exit code 2 and one line on
stderr, so a Kubernetes pod's last log line says what went wrong.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import socket
import sys
import time
from typing import Any

log = logging.getLogger("serving")

# OpenMP's threads sleep between parallel regions instead of spinning for milliseconds against
# the event loop and the model thread (HistGradientBoosting, XGBoost, LightGBM use OpenMP).
# Read when the OpenMP runtime loads, so it is set before any model library is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from serving.config import DEFAULT_CONFIG_PATH

    parser = argparse.ArgumentParser(prog="python -m serving", description=__doc__)
    parser.add_argument(
        "--config",
        default=os.environ.get("SERVING_CONFIG") or DEFAULT_CONFIG_PATH,
        help="config YAML (default: $SERVING_CONFIG, then /etc/config/config.yaml)",
    )
    parser.add_argument("--host", default=os.environ.get("SERVING_HOST", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("SERVING_PORT", "8080")))
    parser.add_argument(
        "--grpc-port",
        type=int,
        default=_env_port("SERVING_GRPC_PORT"),
        help="gRPC port (default: $SERVING_GRPC_PORT, then the config's grpcPort, 8081); 0: off",
    )
    parser.add_argument(
        "--grpc-socket",
        default=None,
        help="serve gRPC on this Unix socket path instead of a TCP port (a local replica: "
        "its supervisor relays the deployment's gRPC port to the replicas' sockets)",
    )
    parser.add_argument(
        "--fd",
        type=int,
        default=None,
        help="serve on this inherited listening socket instead of binding --host and --port "
        "(replicas that share one socket share its queue: one may stop without losing a "
        "connection)",
    )
    parser.add_argument(
        "--notify-fd",
        type=int,
        default=None,
        help="write 'ready' to this inherited file descriptor once serving",
    )
    parser.add_argument(
        "--log-level", default=os.environ.get("SERVING_LOG_LEVEL", "info"), help="info, warning"
    )
    parser.add_argument(
        "--graceful-timeout",
        type=float,
        default=float(os.environ.get("SERVING_GRACEFUL_TIMEOUT", "30")),
        help="seconds to let in-flight requests finish after SIGTERM",
    )
    return parser.parse_args(argv)


def _env_port(name: str) -> int | None:
    raw = os.environ.get(name)
    return int(raw) if raw else None


def configure_logging(level: str) -> None:
    """Plain message lines on stderr: the access log lines are already JSON."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("serving")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def main(argv: list[str] | None = None) -> int:
    # The cyclic garbage collector has nothing to free while the libraries and the model load,
    # yet its passes over the growing heap cost 15% of the import time (measured): it stays off
    # until gc.freeze() in _serve has moved all of that out of its sight.
    gc.disable()
    try:
        return _serve(argv)
    finally:
        gc.enable()


def _serve(argv: list[str] | None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level)
    started = time.perf_counter()
    # Imported here, with the collector off: scikit-learn and the web stack are most of the start.
    from serving.config import ConfigError, load_config
    from serving.loading import ArtifactError, load_model
    from serving.model import ModelError

    try:
        blas_threads = _env_number("SERVING_BLAS_THREADS", 1, int)
        switch_ms = _env_number("SERVING_GIL_SWITCH_MS", 1.0, float)
        cfg = load_config(args.config)
        estimator = load_model(cfg)
        load_seconds = time.perf_counter() - started
        from serving.app import create_app

        grpc_port = cfg.grpc_port if args.grpc_port is None else args.grpc_port
        host = f"[{args.host}]" if ":" in args.host else args.host  # an IPv6 address
        grpc_address = f"{host}:{grpc_port}" if grpc_port else None
        if args.grpc_socket:
            grpc_address = f"unix:{args.grpc_socket}"
        app = create_app(
            cfg,
            estimator,
            load_seconds=load_seconds,
            grpc_address=grpc_address,
            # A port or socket given on the command line (or $SERVING_GRPC_PORT) must be served.
            grpc_required=args.grpc_port is not None or bool(args.grpc_socket),
        )
    except (ConfigError, ArtifactError, ModelError) as exc:
        print(f"serving: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    _limit_blas_threads(blas_threads)
    _shorten_gil_switch_interval(switch_ms)
    # The model and the libraries are loaded for good: move their ~100k objects out of the
    # garbage collector's sight, or each full collection scans them all (60 ms measured here),
    # a stall every request in flight waits out.
    gc.freeze()
    gc.enable()

    # uvicorn drains in-flight requests on SIGTERM, then re-raises the signal with the previous
    # handler restored; this handler turns that into a clean exit status 0.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        access_log=False,  # serving.metrics writes one structured line per request instead
        log_level="warning",
        timeout_graceful_shutdown=args.graceful_timeout,
        server_header=False,
    )
    sockets = None
    if args.fd is not None:
        sockets = [socket.socket(fileno=args.fd)]
        host, port = sockets[0].getsockname()[:2]
        log.info("serving model %s on http://%s:%d (shared socket)", cfg.name, host, port)
    else:
        log.info("serving model %s on http://%s:%d", cfg.name, args.host, args.port)
    server = _server(config, args.notify_fd, shared=sockets is not None)
    server.run(sockets=sockets)
    return 0 if server.started else 3  # 3: could not listen (uvicorn's start-up failure)


# On a shared socket, the seconds between no longer accepting and closing idle connections.
ACCEPT_GRACE_SECONDS = 1.0


def _server(config: Any, notify_fd: int | None, *, shared: bool) -> Any:
    """uvicorn's server, telling a supervisor (`--notify-fd`) once it accepts connections.

    On a shared socket it stops accepting first and waits ACCEPT_GRACE_SECONDS before the
    usual shutdown: uvicorn closes connections that have not sent a request yet, and one
    accepted a moment before the stop would be closed unanswered (seen once in a few thousand
    requests during a rollout), while the other replicas take the queue meanwhile. In that
    second every answer says `Connection: close` (`_close_after_answer`), so a client with a
    kept-alive connection opens a new one, to a replica that accepts, instead of sending its
    next request as uvicorn closes the idle connection under it.
    """
    import asyncio

    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if notify_fd is not None and self.started:
                os.write(notify_fd, b"ready\n")
                os.close(notify_fd)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            if shared:
                for server in self.servers:
                    server.close()
                for connection in list(self.server_state.connections):
                    _close_after_answer(connection)
                await asyncio.sleep(ACCEPT_GRACE_SECONDS)
            await super().shutdown(sockets=sockets)

    return Server(config)


def _close_after_answer(connection: Any) -> None:
    """The connection's answers from now on carry `Connection: close` (uvicorn then closes it
    once the answer is sent): its app is wrapped, so requests before the drain pay nothing."""
    cycle = getattr(connection, "cycle", None)
    if cycle is not None and not cycle.response_complete:
        cycle.keep_alive = False  # the request in progress (if its answer has not started)
    app = connection.app

    async def closing(scope: Any, receive: Any, send: Any) -> None:
        async def send_closing(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"connection", b"close")]
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, send_closing)

    connection.app = closing


def _env_number(name: str, default: float, kind: type) -> Any:
    from serving.config import ConfigError

    raw = os.environ.get(name)
    if raw is None or raw == "":
        return kind(default)
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(
            f"{name} must be a positive {'integer' if kind is int else 'number'}, got {raw!r}"
        ) from None
    if value <= 0:
        raise ConfigError(
            f"{name} must be a positive {'integer' if kind is int else 'number'}, got {raw!r}"
        )
    return value


def _limit_blas_threads(threads: int) -> None:
    """One BLAS thread by default (SERVING_BLAS_THREADS): throughput comes from batching, and
    BLAS threads spinning on a small or CPU-limited machine starve the event loop."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads, user_api="blas")


def _shorten_gil_switch_interval(milliseconds: float) -> None:
    """1 ms instead of Python's 5 ms (SERVING_GIL_SWITCH_MS). A slow model (a forest) runs in
    the model thread and drops the GIL once per tree; with 5 ms the busy event loop can keep it
    that long each time. 1 ms measured 1.5x the throughput at 64 connections."""
    sys.setswitchinterval(milliseconds / 1000)


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
