"""``python -m harness.launch ARGS``: ``accelerate launch ARGS``, tied to the compare that started it.

Accelerate's launcher runs torchrun's agent in this process, and the agent starts the workers. The
only addition: like every worker, this process asks Linux for SIGTERM when its parent (the compare)
dies, even by ``kill -9``; the agent then stops the workers, so no orphan keeps training. SIGTERM
and Ctrl-C reach the agent, which forwards them to the workers.
"""

from __future__ import annotations

import sys

from harness.distributed import die_with_parent


def main(argv: list[str]) -> int:
    die_with_parent()
    from accelerate.commands.launch import launch_command, launch_command_parser

    args = launch_command_parser().parse_args(argv)
    try:
        launch_command(args)
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # a worker failed: its record or error file says why; keep the exit code honest
        code = getattr(err, "returncode", None) or getattr(getattr(err, "failures", None), "exitcode", None)
        print(f"harness.launch: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}", file=sys.stderr)
        return code if isinstance(code, int) and code > 0 else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
