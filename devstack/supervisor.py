"""Run child processes, each in its own process group, and stop them without leaving any behind.

Each child gets its own session (so its own process group): Ctrl-C in the terminal reaches only
`up`, which then stops the children in order, and a signal sent to the group also reaches any
process a child started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence

from devstack.console import Console

# A child's line may be long (a stack trace in one JSON log record); past this it is split.
_LINE_LIMIT = 1 << 20
CHILD_UMASK = 0o077
# After the child exits, how long its pipes may stay open (held by a stray grandchild).
_DRAIN_TIMEOUT_S = 1.0


class Child:
    """One supervised process: started once, its output printed behind its name."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        console: Console,
        *,
        quiet_stop: bool = False,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self._console = console
        # Drop output once asked to stop (the dev server warns about every poller it closes).
        self._quiet_stop = quiet_stop
        self._stopping = False
        self._proc: asyncio.subprocess.Process | None = None
        self._pumps: list[asyncio.Task[None]] = []
        self._exited: asyncio.Task[int] | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None, "child not started"
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.returncode

    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
            start_new_session=True,
            # What a child creates (Temporal's SQLite files, the paper state, logs) is its
            # owner's alone, whatever the umask `up` was started with.
            umask=CHILD_UMASK,
            limit=_LINE_LIMIT,
        )
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._pumps = [
            asyncio.create_task(self._pump(self._proc.stdout)),
            asyncio.create_task(self._pump(self._proc.stderr)),
        ]
        self._exited = asyncio.create_task(self._wait())

    def exited(self) -> asyncio.Task[int]:
        """A task that completes with the exit code once the child is gone and its output read."""
        assert self._exited is not None, "child not started"
        return self._exited

    async def stop(self, grace_s: float) -> None:  # float-ok: seconds
        """SIGTERM the group; SIGKILL it if the child is still there after `grace_s`."""
        if self._proc is None:
            return
        if self._proc.returncode is None:
            self._stopping = True
            self._signal_group(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(self.exited()), timeout=max(grace_s, 0.0))
            except TimeoutError:
                self._console.say(f"{self.name} did not stop within {grace_s:.1f} s: killing it")
        # Sweep the group even after a clean exit: a grandchild may have outlived its parent.
        self._signal_group(signal.SIGKILL)
        await self.exited()

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)

    async def _wait(self) -> int:
        assert self._proc is not None
        code = await self._proc.wait()
        _, pending = await asyncio.wait(self._pumps, timeout=_DRAIN_TIMEOUT_S)
        for task in pending:
            task.cancel()
        return code

    async def _pump(self, stream: asyncio.StreamReader) -> None:
        while True:
            try:
                line = await stream.readline()
            except ValueError:
                # Longer than the limit: print what is buffered and carry on.
                line = await stream.read(_LINE_LIMIT)
            if not line:
                return
            if self._stopping and self._quiet_stop:
                continue
            self._console.child(self.name, line.decode("utf-8", errors="replace"))


async def stop_all(children: Sequence[Child], grace_s: float) -> None:  # float-ok: seconds
    """Stop a set of children in parallel, each with the same grace."""
    await asyncio.gather(*(child.stop(grace_s) for child in children))


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
