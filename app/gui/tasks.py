"""Run work off the Tk main thread and hand results back to it.

Tk is not thread-safe: workers never touch widgets. Finished futures are collected by a
poll that runs on the Tk thread (`after`), which then calls the callbacks.
"""

from __future__ import annotations

import tkinter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

POLL_MS = 40


class BackgroundTasks:
    def __init__(self, root: tkinter.Misc) -> None:
        self._root = root
        # One worker: model loading and predictions run in order, never two models at once.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bonefrac-worker")
        self._pending: list[tuple[Future, Callable[[Any], None], Callable[[BaseException], None]]] = []
        self._polling = False

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def submit(
        self, work: Callable[[], Any], on_done: Callable[[Any], None], on_error: Callable[[BaseException], None]
    ) -> None:
        self._pending.append((self._executor.submit(work), on_done, on_error))
        if not self._polling:
            self._polling = True
            self._root.after(POLL_MS, self._poll)

    def _poll(self) -> None:
        finished = [item for item in self._pending if item[0].done()]
        self._pending = [item for item in self._pending if not item[0].done()]
        try:
            for future, on_done, on_error in finished:
                error = future.exception()
                if error is None:
                    on_done(future.result())
                else:
                    on_error(error)
        finally:  # a failing callback must not stop later work from being delivered
            if self._pending:
                self._root.after(POLL_MS, self._poll)
            else:
                self._polling = False

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
