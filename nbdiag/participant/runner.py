"""Where the runs of a participant level are audited, and how progress is shown.

Three backends give the same outputs (each run × variant is computed the same way
and written by whoever computed it, atomically):

* in this process (``n_jobs=1``);
* joblib processes on this machine (``--n-jobs N``);
* an existing Dask cluster (``--dask-scheduler ADDRESS``), e.g. one started by
  dask-jobqueue's ``SLURMCluster`` (``nbdiag[dask]`` extra). The workers must see
  BIDS_DIR and OUTPUT_DIR at the same paths (a shared file system) and have
  nbdiag installed.

Results arrive in completion order; the caller orders what it keeps.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Sequence

STATUSES = ("pass", "warn", "fail", "error")

#: one run at a time per process when the caller is a worker *thread* (Dask threads):
#: the audit captures nilearn's warnings with ``warnings.catch_warnings``, which is process-wide
_THREAD_LOCK = threading.Lock()


def call_serialised(fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn(*args)``; outside the main thread, one call at a time in this process."""
    if threading.current_thread() is threading.main_thread():
        return fn(*args)
    with _THREAD_LOCK:
        return fn(*args)


def execute(fn: Callable[..., Any], tasks: Sequence[tuple], n_jobs: int = 1,
            dask_scheduler: str | None = None) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, fn(*tasks[index]))`` as each task completes.

    Parameters
    ----------
    fn : callable
        A module-level function (pickled by reference for joblib and Dask).
    tasks : sequence of tuple
        Positional arguments of each call.
    n_jobs : int
        joblib processes (1: in this process; -1: all cores). Ignored with Dask.
    dask_scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``).

    Raises
    ------
    ImportError
        For ``dask_scheduler`` without ``distributed`` installed (``pip install "nbdiag[dask]"``).
    """
    if dask_scheduler:
        yield from _dask(fn, tasks, dask_scheduler)
    elif n_jobs == 1 or len(tasks) <= 1:
        for i, args in enumerate(tasks):
            yield i, fn(*args)
    else:
        from joblib import Parallel, delayed  # lazy: the CLI imports this module at start; joblib only for n_jobs > 1

        jobs = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
            delayed(_indexed)(i, fn, args) for i, args in enumerate(tasks))
        yield from jobs


def _indexed(i: int, fn: Callable[..., Any], args: tuple) -> tuple[int, Any]:
    return i, fn(*args)


def _dask(fn: Callable[..., Any], tasks: Sequence[tuple], address: str) -> Iterator[tuple[int, Any]]:
    try:
        from distributed import Client, as_completed  # lazy: optional dependency (dask), --dask-scheduler only
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(f"--dask-scheduler {address} needs dask.distributed: pip install \"nbdiag[dask]\"") from exc
    with Client(address) as client:
        futures = {client.submit(call_serialised, fn, *args, pure=False): i for i, args in enumerate(tasks)}
        for future in as_completed(futures):
            i = futures.pop(future)
            result = future.result()
            future.release()
            yield i, result


# --------------------------------------------------------------------------- progress
class Progress:
    """Runs done / total, rate, ETA and pass / warn / fail / error counts.

    ``live=True`` draws a rich progress bar on stderr (a terminal); otherwise each
    run gives one plain line through ``log`` (the format scripts and tests parse:
    ``[i/n] <prefix>  <variant>: <status>, ...  (<s> s)``).
    """

    def __init__(self, total: int, log: Callable[[str], None], live: bool = False, console: Any = None) -> None:
        self.total, self.log, self.done = total, log, 0
        self.counts = dict.fromkeys(STATUSES, 0)
        self.skipped = 0
        self.start = time.perf_counter()
        self._bar = None
        if live:
            try:
                from rich.console import Console  # lazy: optional, the live progress bar only
                from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn,
                                           TimeElapsedColumn, TimeRemainingColumn)
            except ImportError:  # pragma: no cover - rich is a dependency
                live = False
            else:
                self._console = console if console is not None else Console(stderr=True)
                self._bar = RichProgress(
                    TextColumn("[bold]nbdiag"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}"), TextColumn("ETA"), TimeRemainingColumn(),
                    TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("{task.fields[counts]}"),
                    console=self._console, transient=False)
                self._task = self._bar.add_task("runs", total=total, rate="", counts=self._counts_text())
                self._bar.start()

    def _counts_text(self) -> str:
        text = "  ".join(f"{s} {self.counts[s]}" for s in STATUSES)
        return text + (f"  unchanged {self.skipped}" if self.skipped else "")

    def update(self, line: str, statuses: Iterable[str], skipped: bool = False, details: str = "") -> None:
        """One run finished (``statuses``: one per variant)."""
        self.done += 1
        self.skipped += bool(skipped)
        for s in statuses:
            self.counts[s if s in self.counts else "error"] += 1
        if self._bar is None:
            self.log(line)
            if details:
                self.log(details)
            return
        if "\n    error" in line or details:  # errors and -v details go above the bar
            self._bar.console.print(line + (f"\n{details}" if details else ""), highlight=False, markup=False)
        elapsed = time.perf_counter() - self.start
        rate = f"{self.done / elapsed:.1f} runs/s" if elapsed > 0 else ""
        self._bar.update(self._task, completed=self.done, rate=rate, counts=self._counts_text())

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def wants_live_progress(stream: Any = None) -> bool:
    """True when ``stream`` (default stderr) is a terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
