"""One running plugin child and the host's end of its pipe.

A ``select.poll`` object per child waits for a reply with a deadline: ``Connection.poll``
would build a selector on every call.
"""

from __future__ import annotations

import contextlib
import math
import pickle
import select
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from . import forkserver, log_relay
from .child import serve
from .spawn import CHILD_NAME_PREFIX, start_child
from .wire import OP_SHUTDOWN, PROTOCOL, ChildSpec, Limits, load_reply


class Channel:
    """A started child process and its pipe. Not thread-safe: its owner serialises use."""

    def __init__(self, proc: BaseProcess, conn: Connection) -> None:
        self.proc = proc
        self.conn = conn
        self._poll = select.poll()
        self._poll.register(conn.fileno(), select.POLLIN)
        self.sent_config: dict[str, dict[str, Any] | None] = {}
        """Per service type, the config the child's instance was last built with: a config is
        sent again only when it differs."""

    @classmethod
    def start(cls, plugin: str, spec: ChildSpec, limits: Limits) -> Channel:
        """Start a child for ``plugin`` (it is not ready yet: read its first reply), forked
        from the fork server where it can be used, else spawned (:mod:`.forkserver`)."""
        ctx = forkserver.context()
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        proc = ctx.Process(
            target=serve,
            args=(child_conn, spec, limits),
            name=f"{CHILD_NAME_PREFIX}{plugin}",
            daemon=True,
        )
        try:
            start_child(proc, spec.environment, idle=spec.idle)
        except Exception:
            parent_conn.close()
            raise
        finally:
            child_conn.close()  # the child has its own copy; ours would hide its EOF
        return cls(proc, parent_conn)

    @property
    def pid(self) -> int | None:
        return self.proc.pid

    @property
    def exitcode(self) -> int | None:
        return self.proc.exitcode

    @property
    def alive(self) -> bool:
        return self.proc.is_alive()

    def send(self, payload: bytes) -> None:
        self.conn.send_bytes(payload)

    def wait(self, timeout: float) -> bool:
        """Whether something can be read within ``timeout`` seconds (EOF included)."""
        return bool(self._poll.poll(math.ceil(timeout * 1000)))

    def receive(self) -> bytes:
        return self.conn.recv_bytes()

    def close(self) -> None:
        """Close our end of the pipe (only our copy of the fd, in a forked host)."""
        with contextlib.suppress(OSError):
            self.conn.close()

    def reap(self, wait: float) -> None:
        """Wait up to ``wait`` s for the child to exit, then kill it; always reaped."""
        self.proc.join(wait)
        if self.proc.exitcode is None:
            with contextlib.suppress(Exception):
                self.proc.kill()
            self.proc.join(5.0)

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.kill()

    def say_goodbye(self, grace: float, plugin: str) -> None:
        """Ask the child to shut down (the plugin's ``shutdown`` hook runs) and keep the log
        records of its last reply."""
        try:
            self.send(pickle.dumps((OP_SHUTDOWN,), PROTOCOL))
            if self.wait(grace):
                with contextlib.suppress(Exception):
                    log_relay.unwrap(plugin, load_reply(self.receive()))
        except (EOFError, OSError):
            pass

    def wind_down(self, grace: float) -> None:
        """After :meth:`close`: wait ``grace`` s for the child to exit, then terminate it, then
        kill it."""
        proc = self.proc
        proc.join(grace)
        if proc.exitcode is None:
            proc.terminate()
            proc.join(1.0)
        if proc.exitcode is None:
            proc.kill()
            proc.join(5.0)
