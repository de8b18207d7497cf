"""Command line: ``emkit demo`` (placeholder until the full CLI lands)."""

from __future__ import annotations

import sys


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["demo"]:
        from .demo import main as demo_main
        return demo_main(argv[1:])
    print("usage: emkit demo", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
