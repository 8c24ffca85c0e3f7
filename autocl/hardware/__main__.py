"""``python -m autocl.hardware``: the latency agent without the rest of autocl.

Same options as ``autocl agent``; imports only onnxruntime, numpy, pydantic and pyyaml (never
torch), so it runs on devices where only the inference runtime is installed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autocl.errors import AutoclError
from autocl.hardware._agent import read_token_file, serve


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m autocl.hardware",
        description=("Serve latency measurements on this device for profiles with `measure: remote`."),
    )
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=8765, help="port (0: any free one, printed at start)")
    ap.add_argument("--token-file", type=Path, required=True, help="file holding the token (16+ characters)")
    ap.add_argument("--max-upload-mb", type=float, default=64.0, help="largest request body, in MB")
    ap.add_argument("--idle-exit", type=float, default=0.0, help="stop after this many idle seconds (0: never)")
    ap.add_argument("--scratch", type=Path, default=None, help="folder for per-request temporary artifacts")
    ap.add_argument("--quiet", action="store_true", help="do not log requests")
    args = ap.parse_args(argv)
    try:
        token = read_token_file(args.token_file)
        if args.scratch is not None:
            args.scratch.mkdir(parents=True, exist_ok=True)
        serve(
            args.host,
            args.port,
            token,
            max_upload_bytes=int(args.max_upload_mb * 2**20),
            idle_exit_s=args.idle_exit,
            scratch=args.scratch,
            quiet=args.quiet,
            announce=lambda line: print(line, flush=True),
        )
    except AutoclError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
