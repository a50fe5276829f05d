"""The emulation's web server: the player page, dash.js and the DASH video, on the host's end of the link.

    python -m emulation.server --video-dir DIR --host 10.77.0.1 --port 8000 [--delay-ms 80]

/ serves emulation/player/ (index.html, abr_rule.js, node_modules/dashjs), /video/ the video folder.
--delay-ms holds every response that long before it is sent: the round trip, where the link cannot add it.
"""
import argparse
import asyncio
from pathlib import Path

from aiohttp import web

PLAYER = Path(__file__).resolve().parent / "player"


def make_app(video_dir: Path, delay_ms: float) -> web.Application:
    @web.middleware
    async def round_trip(request, handler):
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000.0)
        return await handler(request)

    app = web.Application(middlewares=[round_trip])
    app.router.add_static("/video/", video_dir)
    app.router.add_static("/", PLAYER)
    return app


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    web.run_app(make_app(args.video_dir, args.delay_ms), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
