"""A Measurer in its own process (``--isolate``): peak RSS and GPU memory belong to one configuration only.

The worker stays alive for the whole sweep, so configurations are still interleaved round-robin; the parent sends
``("run", count)`` / ``("memory", None)`` / ``("close", None)`` and gets ``("ok", value)`` or ``("error", exc)``.
"""

from __future__ import annotations

import multiprocessing

import numpy as np

from edgepose.bench.measure import Config, Measurer
from edgepose.errors import EdgePoseError

START_TIMEOUT_S = 300.0
POLL_S = 0.2


def _serve(conn, config: Config, frame: np.ndarray, seed: int) -> None:
    """Worker loop (module level so the spawn start method can import it)."""
    try:
        measurer = Measurer(config, frame, seed)
    except BaseException as exc:
        conn.send(("error", _portable(exc)))
        return
    conn.send(("ok", measurer.describe()))
    while True:
        command, argument = conn.recv()
        try:
            if command == "run":
                conn.send(("ok", measurer.run(argument)))
            elif command == "memory":
                conn.send(("ok", measurer.memory()))
            else:
                measurer.close()
                conn.send(("ok", None))
                return
        except BaseException as exc:
            conn.send(("error", _portable(exc)))


def _portable(exc: BaseException) -> BaseException:
    """``exc`` itself when it is one of ours (they pickle), else an EdgePoseError carrying its text."""
    return exc if isinstance(exc, EdgePoseError) else EdgePoseError(f"{type(exc).__name__}: {exc}")


class IsolatedMeasurer:
    """Same surface as Measurer (describe / run / memory / close), backed by a spawned worker process."""

    def __init__(self, config: Config, frame: np.ndarray, seed: int = 0) -> None:
        context = multiprocessing.get_context("spawn")  # fresh interpreter: no inherited allocations or sessions
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, config, frame, seed), daemon=True)
        self._process.start()
        child.close()
        self.config = config
        self._info = self._reply(START_TIMEOUT_S)

    def _reply(self, timeout: float | None = None):
        waited = 0.0
        # Poll in steps: a worker that dies before taking its end of the pipe leaves no EOF to wait for.
        while not self._conn.poll(POLL_S):
            waited += POLL_S
            if not self._process.is_alive() or (timeout is not None and waited >= timeout):
                self._dead(f"did not answer within {waited:.0f} s" if self._process.is_alive() else "died")
        try:
            status, value = self._conn.recv()
        except EOFError:
            self._dead("died")
        if status == "error":
            self.close()
            raise value
        return value

    def _dead(self, what: str) -> None:
        code = self._process.exitcode
        self.close()
        raise EdgePoseError(f"benchmark worker for {self.config.label} {what} (exit code {code}); if the "
                            "program that started it has no `if __name__ == '__main__':` guard, add one "
                            "(the worker is started with multiprocessing's spawn method)")

    def describe(self) -> dict:
        """What the worker opened."""
        return dict(self._info)

    def run(self, count: int) -> list[dict]:
        """``count`` timed calls in the worker."""
        self._conn.send(("run", count))
        return self._reply()

    def memory(self) -> dict:
        """The worker's own peak RSS and GPU memory."""
        self._conn.send(("memory", None))
        return self._reply()

    def close(self) -> None:
        """Stop the worker (politely, then by its process id)."""
        if self._process.is_alive():
            try:
                self._conn.send(("close", None))
                if self._conn.poll(30):
                    self._conn.recv()
            except (OSError, EOFError):
                pass
            self._process.join(10)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(5)
        self._conn.close()
