"""Simulated n-back events: block timing, trials, responses (``events.tsv``).

Part of :mod:`nbdiag.demo.synth` (see its docstring for the determinism rules).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Fixation (s) after each of the six blocks: a few short gaps between
#: blocks, a longer one mid-run and the bulk at the end (70.4 s in total, so
#: that 6 x (9.6 + 48) + 70.4 = 416 s = 520 volumes x 0.8 s).
DEFAULT_FIXATION_S: tuple[float, ...] = (4.8, 4.8, 19.2, 4.8, 4.8, 32.0)


def _float_format(x: float) -> str:
    """Six significant digits, always recognisable as a float (``1.0``)."""
    s = f"{x:.6g}"
    return s if any(ch in s for ch in ".eni") else s + ".0"


# --------------------------------------------------------------------------
# events
# --------------------------------------------------------------------------
def nback_events(
    n_blocks: int = 6,
    block_s: float = 48.0,
    trial_s: float = 2.4,
    instruction_s: float = 9.6,
    fixation_s: float | Sequence[float] = DEFAULT_FIXATION_S,
    seed: int | np.random.Generator = 0,
    first_onset: float = 0.0,
    block_order: Sequence[str] | None = None,
    include_fixation: bool = False,
    p_response: Mapping[str, float] | None = None,
    trial_duration: float | None = None,
) -> pd.DataFrame:
    """Trial-level events of a block n-back run.

    Each block is an ``INSTRUCTION`` screen followed by ``block_s / trial_s``
    trials of the block's condition (``0BACK`` or ``2BACK``), then fixation.

    Parameters
    ----------
    n_blocks : int, default=6
        Number of task blocks.
    block_s : float, default=48.0
        Block length in seconds; must be a whole number of trials.
    trial_s : float, default=2.4
        Trial period (stimulus onset asynchrony) in seconds.
    instruction_s : float, default=9.6
        Duration of the ``INSTRUCTION`` screen shown before every block.
    fixation_s : float or sequence of float, default=DEFAULT_FIXATION_S
        Fixation after each block: one value for all blocks or one per block.
    seed : int or numpy.random.Generator, default=0
        Seed of the response-time draws.
    first_onset : float, default=0.0
        Onset of the first instruction screen (fixation before it).
    block_order : sequence of str, optional
        Condition of each block; default alternates ``0BACK``, ``2BACK``.
    include_fixation : bool, default=False
        Also list fixation periods as ``fixation`` rows.  The real study does
        not, so fixation is the implicit baseline by default.
    p_response : mapping of str to float, optional
        Probability of a response per condition; default
        ``{"0BACK": 0.95, "2BACK": 0.85}``.
    trial_duration : float, optional
        Duration written for each trial; default ``trial_s``.

    Returns
    -------
    pandas.DataFrame
        Columns ``onset``, ``duration``, ``trial_type``, ``response_time``
        (NaN for instruction/fixation rows and unanswered trials), sorted by
        onset.

    Raises
    ------
    ValueError
        If ``block_s`` is not a whole number of trials, or ``fixation_s`` or
        ``block_order`` do not have one entry per block.
    """
    n_trials, fix, order = _blocks(n_blocks, block_s, trial_s, fixation_s, block_order)
    p_resp = {"0BACK": 0.95, "2BACK": 0.85, **(p_response or {})}
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    dur = trial_s if trial_duration is None else float(trial_duration)
    rows: list[tuple[float, float, str, float]] = []
    t = float(first_onset)
    if include_fixation and t > 0:
        rows.append((0.0, t, "fixation", np.nan))
    for b, cond in enumerate(order):
        rows.append((t, instruction_s, "INSTRUCTION", np.nan))
        t += instruction_s
        rows.extend(_trials(rng, cond, t, n_trials, trial_s, dur, p_resp.get(cond, 0.9)))
        t += block_s
        if include_fixation and fix[b] > 0:
            rows.append((t, fix[b], "fixation", np.nan))
        t += fix[b]
    events = pd.DataFrame(
        rows, columns=["onset", "duration", "trial_type", "response_time"]
    )
    events["onset"] = events["onset"].round(6)
    events["duration"] = events["duration"].round(6)
    return events.sort_values("onset", kind="stable").reset_index(drop=True)


#: median response time (s) per condition of the simulated n-back
_RT_MEDIAN = {"0BACK": 0.55, "2BACK": 0.75}


def _blocks(n_blocks: int, block_s: float, trial_s: float, fixation_s: float | Sequence[float],
            block_order: Sequence[str] | None) -> tuple[int, list[float], list[str]]:
    """``(trials per block, fixation after each block, condition of each block)``, checked.

    Raises
    ------
    ValueError
        As :func:`nback_events` says.
    """
    if n_blocks < 1:
        raise ValueError(f"n_blocks must be >= 1, got {n_blocks!r}")
    n_trials = int(round(block_s / trial_s))
    if n_trials < 1 or abs(n_trials * trial_s - block_s) > 1e-9:
        raise ValueError(
            f"block_s ({block_s}) must be a whole number of trials of "
            f"trial_s ({trial_s})"
        )
    if np.ndim(fixation_s) == 0:
        fix = [float(fixation_s)] * n_blocks  # type: ignore[arg-type]
    else:
        fix = [float(f) for f in fixation_s]  # type: ignore[union-attr]
    if len(fix) != n_blocks:
        raise ValueError(
            f"fixation_s must have one value per block ({n_blocks}), "
            f"got {len(fix)}"
        )
    if block_order is None:
        order = ["0BACK" if b % 2 == 0 else "2BACK" for b in range(n_blocks)]
    else:
        order = [str(b) for b in block_order]
        if len(order) != n_blocks:
            raise ValueError(
                f"block_order must have one entry per block ({n_blocks}), "
                f"got {len(order)}"
            )
    return n_trials, fix, order


def _trials(rng: np.random.Generator, cond: str, start: float, n_trials: int, trial_s: float, dur: float,
            p_respond: float) -> list[tuple[float, float, str, float]]:
    """One block's trial rows: a response with probability ``p_respond``, its time log-normal
    around the condition's median (clipped to [0.2 s, trial_s - 0.1 s], NaN when none)."""
    rows = []
    for i in range(n_trials):
        responded = rng.random() < p_respond
        rt = rng.lognormal(np.log(_RT_MEDIAN.get(cond, 0.65)), 0.25)
        rt = float(np.clip(np.round(rt, 3), 0.2, trial_s - 0.1))
        rows.append((start + i * trial_s, dur, cond, rt if responded else np.nan))
    return rows


@dataclass
class EventsRecipe:
    """Parameters of :func:`nback_events` for one run (seed filled per run).

    Parameters
    ----------
    n_blocks, block_s, trial_s, instruction_s, fixation_s, first_onset, \
block_order, include_fixation, trial_duration
        See :func:`nback_events`.
    seed : int, optional
        Seed of the response times; default derived from the run's name.
    """

    n_blocks: int = 6
    block_s: float = 48.0
    trial_s: float = 2.4
    instruction_s: float = 9.6
    fixation_s: float | tuple[float, ...] = DEFAULT_FIXATION_S
    first_onset: float = 0.0
    block_order: tuple[str, ...] | None = None
    include_fixation: bool = False
    trial_duration: float | None = None
    seed: int | None = None

    def make(self, seed: int | np.random.Generator) -> pd.DataFrame:
        """Build the events table.

        Parameters
        ----------
        seed : int or numpy.random.Generator
            Used when :attr:`seed` is None.

        Returns
        -------
        pandas.DataFrame
            See :func:`nback_events`.
        """
        return nback_events(
            n_blocks=self.n_blocks,
            block_s=self.block_s,
            trial_s=self.trial_s,
            instruction_s=self.instruction_s,
            fixation_s=self.fixation_s,
            seed=seed if self.seed is None else self.seed,
            first_onset=self.first_onset,
            block_order=self.block_order,
            include_fixation=self.include_fixation,
            trial_duration=self.trial_duration,
        )
