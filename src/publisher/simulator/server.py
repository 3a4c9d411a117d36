"""Start and stop the simulator: in this event loop, or as a child process.

async with run_in_process(SimConfig(latency=0.05)) as url: ...   # tests
async with SimulatorProcess(SimConfig(fault_rate=0.1)) as sim:    # demo, benchmarks
    sim.url
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from types import FrameType, TracebackType

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from publisher.errors import PublisherError
from publisher.simulator.app import QuietDrops, SimulatorApp
from publisher.simulator.state import SimConfig

URL_PREFIX = "SIMULATOR_URL="
GRACE_SECONDS = 2


class SimulatorError(PublisherError):
    """The platform simulator could not start."""


class _Server(uvicorn.Server):
    """A uvicorn server that also ends the app's hanging requests when told to exit."""

    def __init__(self, config: uvicorn.Config, app: SimulatorApp) -> None:
        super().__init__(config)
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        """Remember the loop, so a signal can reach the app safely."""
        self.loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Stop serving, and release hanging requests at once."""
        super().handle_exit(sig, frame)
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.app.close)

    def stop(self) -> None:
        """Ask the server to stop (from inside its event loop)."""
        self.app.close()
        self.should_exit = True


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (port 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms delayed-ACK stalls
    sock.bind((host, port))
    return sock


def url_of(sock: socket.socket) -> str:
    """The base URL a bound socket serves."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def make_server(app: SimulatorApp, *, log_level: str = "warning", own_logging: bool) -> _Server:
    """A uvicorn server for ``app``: no access log, httptools when installed."""
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        # Longer than any client keeps an idle connection: the server must never close one
        # just as the client reuses it (that turns a publish into an unknown outcome).
        timeout_keep_alive=75,
        timeout_graceful_shutdown=GRACE_SECONDS,
        log_config=LOGGING_CONFIG if own_logging else None,
    )
    _quiet_drops()
    return _Server(config, app)


def _quiet_drops() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, QuietDrops) for f in logger.filters):
        logger.addFilter(QuietDrops())


async def _started(server: _Server, task: asyncio.Task[None]) -> None:
    """Wait until ``server`` listens; raise if it ended instead."""
    while not server.started:
        if task.done():
            task.result()
            raise SimulatorError("The platform simulator stopped while starting.")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def run_in_process(
    config: SimConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    platforms: Sequence[str] | None = None,
) -> AsyncIterator[str]:
    """Serve the simulator as a task in this event loop; yield its base URL."""
    app = SimulatorApp(config, platforms=platforms)
    sock = bind(host, port)
    server = make_server(app, own_logging=False)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await _started(server, task)
        yield url_of(sock)
    finally:
        server.stop()
        await task
        sock.close()


async def serve_forever(
    config: SimConfig,
    *,
    host: str,
    port: int,
    on_ready: Callable[[str], None],
    platforms: Sequence[str] | None = None,
    log_level: str = "warning",
) -> None:
    """Serve until SIGINT/SIGTERM, calling ``on_ready(url)`` once listening."""
    app = SimulatorApp(config, platforms=platforms)
    sock = bind(host, port)
    server = make_server(app, log_level=log_level, own_logging=True)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await _started(server, task)
    on_ready(url_of(sock))
    await task
    sock.close()


def cli_args(config: SimConfig) -> list[str]:
    """The ``python -m publisher.simulator`` flags that reproduce ``config``."""
    args = [
        f"--latency={config.latency}",
        f"--fault-rate={config.fault_rate}",
        f"--faults={','.join(config.faults)}",
        f"--hang-seconds={config.hang_seconds}",
        f"--retry-after={config.retry_after}",
        f"--regain-minutes={config.regain_minutes}",
        f"--video-processing-seconds={config.video_processing_seconds}",
        f"--instagram-container-ttl={config.instagram_container_ttl}",
        f"--instagram-quota={config.instagram_quota}",
        f"--linkedin-sunset-before={config.linkedin_sunset_before}",
        f"--youtube-daily-uploads={config.youtube_daily_uploads}",
        f"--youtube-session-ttl={config.youtube_session_ttl}",
        f"--media-default-size={config.media_default_size}",
    ]
    if config.seed is not None:
        args.append(f"--seed={config.seed}")
    if config.account_quota is not None:
        args.append(f"--account-quota={config.account_quota}")
    if config.youtube_channel_uploads is not None:
        args.append(f"--youtube-channel-uploads={config.youtube_channel_uploads}")
    return args


class SimulatorProcess:
    """The simulator in a child process: ``async with SimulatorProcess(cfg) as sim: sim.url``."""

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 15.0,
        python: str = sys.executable,
    ) -> None:
        """Describe the child; nothing starts until :meth:`start`."""
        self.config = config or SimConfig()
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self.python = python
        self.url = ""
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> str:
        """Start the child and return its base URL once it listens."""
        args = ["-m", "publisher.simulator", f"--host={self.host}", f"--port={self.port}"]
        self.process = await asyncio.create_subprocess_exec(
            self.python, *args, *cli_args(self.config), stdout=asyncio.subprocess.PIPE
        )
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), self.startup_timeout)
        except TimeoutError:
            await self.stop()
            raise SimulatorError("The platform simulator did not start in time.") from None
        text = line.decode().strip()
        if not text.startswith(URL_PREFIX):
            await self.stop()
            raise SimulatorError(f"The platform simulator did not start: {text!r}")
        self.url = text.removeprefix(URL_PREFIX)
        return self.url

    async def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM the child, SIGKILL it after ``grace`` seconds; return its exit code."""
        proc = self.process
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        return proc.returncode

    async def __aenter__(self) -> SimulatorProcess:
        """Start the child."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the child."""
        await self.stop()
