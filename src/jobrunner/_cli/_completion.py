"""`jobrunner completion bash|zsh|fish`: the shell code that makes Tab complete jobrunner.

argcomplete does the work: the script it prints asks `jobrunner` itself for completions (with
`_ARGCOMPLETE` set, `main` hands the parser to argcomplete before parsing), so commands, flags
and choices always match this version's parser, and `--plugin` completes installed plugins.
"""

from __future__ import annotations

import argparse

HOW_TO_LOAD = {
    "bash": 'eval "$(jobrunner completion bash)"  # in ~/.bashrc',
    "zsh": 'eval "$(jobrunner completion zsh)"  # in ~/.zshrc, after compinit',
    "fish": "jobrunner completion fish | source  # in ~/.config/fish/config.fish",
}


async def completion(args: argparse.Namespace) -> int:
    from argcomplete.shell_integration import shellcode

    print(f"# jobrunner tab completion for {args.shell}: {HOW_TO_LOAD[args.shell]}")
    print(shellcode(["jobrunner"], shell=args.shell))
    return 0
