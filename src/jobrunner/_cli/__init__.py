"""The `jobrunner` command line. Heavy modules are imported only by the command that needs them."""

from __future__ import annotations

import sys

from ._parser import build_parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    from ._dispatch import dispatch

    return dispatch(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
