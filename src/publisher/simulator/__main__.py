"""``python -m publisher.simulator``: serve the simulator until SIGTERM or SIGINT.

Prints one line, ``SIMULATOR_URL=http://HOST:PORT``, once it listens.
"""

from __future__ import annotations

import argparse
import signal
import sys
import textwrap
from collections.abc import Sequence
from types import FrameType

from publisher import eventloop
from publisher.simulator.app import PLATFORMS
from publisher.simulator.server import URL_PREFIX, serve_forever
from publisher.simulator.state import (
    DEFAULT_FAULTS,
    FAULT_HELP,
    FAULT_KINDS,
    SimConfig,
    parse_faults,
)


def faults_help() -> str:
    """Every fault kind and what it does, for the end of ``--help``."""
    width = max(map(len, FAULT_KINDS))
    lines = [
        textwrap.fill(
            FAULT_HELP[kind],
            width=96,
            initial_indent=f"  {kind:<{width}}  ",
            subsequent_indent=" " * (width + 4),
        )
        for kind in FAULT_KINDS
    ]
    return "fault kinds (--faults, drawn at --fault-rate):\n" + "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    """The command-line flags."""
    p = argparse.ArgumentParser(
        prog="python -m publisher.simulator",
        description="Local social platform simulator.",
        epilog=faults_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--latency", type=float, default=0.0, help="seconds per publishing call")
    p.add_argument("--fault-rate", type=float, default=0.0, help="0..1")
    p.add_argument(
        "--faults",
        default=",".join(DEFAULT_FAULTS),
        help=f"comma-separated kinds (listed below) from: {','.join(FAULT_KINDS)}",
    )
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--hang-seconds", type=float, default=300.0)
    p.add_argument("--retry-after", type=int, default=2)
    p.add_argument("--regain-minutes", type=int, default=1)
    p.add_argument("--account-quota", type=int, default=None)
    d = SimConfig()
    p.add_argument(
        "--video-processing-seconds",
        type=float,
        default=d.video_processing_seconds,
        help="how long Instagram video containers stay IN_PROGRESS",
    )
    p.add_argument(
        "--instagram-container-ttl",
        type=float,
        default=d.instagram_container_ttl,
        help="seconds before an unpublished Instagram container is EXPIRED",
    )
    p.add_argument(
        "--instagram-quota",
        type=int,
        default=d.instagram_quota,
        help="Instagram posts per account per rolling 24 h",
    )
    p.add_argument(
        "--linkedin-sunset-before",
        default=d.linkedin_sunset_before,
        help="LinkedIn-Version values (YYYYMM) older than this answer 426",
    )
    p.add_argument(
        "--linkedin-accept-duplicates",
        action="store_true",
        help="accept a LinkedIn post that repeats a live one (LinkedIn refuses it: 422)",
    )
    p.add_argument(
        "--youtube-daily-uploads",
        type=int,
        default=d.youtube_daily_uploads,
        help="videos.insert calls per channel per Pacific day (then quotaExceeded)",
    )
    p.add_argument(
        "--youtube-channel-uploads",
        type=int,
        default=None,
        help="completed uploads per channel per Pacific day (then uploadLimitExceeded)",
    )
    p.add_argument(
        "--youtube-session-ttl",
        type=float,
        default=d.youtube_session_ttl,
        help="seconds a resumable upload session lives",
    )
    p.add_argument(
        "--media-default-size",
        type=int,
        default=d.media_default_size,
        help="bytes /_media/{name} serves without ?size=",
    )
    p.add_argument("--platforms", default=",".join(PLATFORMS))
    p.add_argument("--log-level", default="warning")
    return p


def config_from(args: argparse.Namespace) -> SimConfig:
    """A :class:`SimConfig` from parsed flags."""
    return SimConfig(
        latency=args.latency,
        fault_rate=args.fault_rate,
        faults=parse_faults(args.faults),
        seed=args.seed,
        hang_seconds=args.hang_seconds,
        retry_after=args.retry_after,
        regain_minutes=args.regain_minutes,
        account_quota=args.account_quota,
        video_processing_seconds=args.video_processing_seconds,
        instagram_container_ttl=args.instagram_container_ttl,
        instagram_quota=args.instagram_quota,
        linkedin_sunset_before=args.linkedin_sunset_before,
        linkedin_refuse_duplicates=not args.linkedin_accept_duplicates,
        youtube_daily_uploads=args.youtube_daily_uploads,
        youtube_channel_uploads=args.youtube_channel_uploads,
        youtube_session_ttl=args.youtube_session_ttl,
        media_default_size=args.media_default_size,
    )


def _announce(url: str) -> None:
    print(f"{URL_PREFIX}{url}", flush=True)


def _exit_quietly(sig: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags and serve; exit 0 on SIGTERM/SIGINT."""
    p = parser()
    args = p.parse_args(argv)
    platforms = [name.strip() for name in args.platforms.split(",") if name.strip()]
    unknown = [name for name in platforms if name not in PLATFORMS]
    if unknown:
        p.error(f"unknown platforms {unknown}; known: {list(PLATFORMS)}")
    try:
        config = config_from(args)
    except (ValueError, TypeError) as exc:
        p.error(str(exc))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_quietly)
    try:
        eventloop.run(
            serve_forever(
                config,
                host=args.host,
                port=args.port,
                on_ready=_announce,
                platforms=platforms,
                log_level=args.log_level,
            )
        )
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
