"""What the staff training checks (reference/*/train.py) share."""
from __future__ import annotations

import contextlib
import json
from dataclasses import asdict
from pathlib import Path

import torch


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """torch's intra-op thread count set for a run and put back after it (None: leave torch's),
    so that a test calling a training function does not change the threads of the tests after it."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def write_summary(summary, out: str | Path, leave_out: tuple[str, ...] = ()) -> Path:
    """A training summary (a dataclass) as indented JSON, without the bulky fields `leave_out`."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = {k: v for k, v in asdict(summary).items() if k not in leave_out}
    path.write_text(json.dumps(written, indent=2) + "\n")
    return path


def preset_settings(settings_class, presets: dict, setting: str, overrides: dict):
    """`settings_class` with the named preset's values and `overrides` (field name -> value) on top."""
    if setting not in presets:
        raise ValueError(f"setting must be one of {sorted(presets)}, got {setting!r}")
    return settings_class(**{**presets[setting], **overrides, "setting": setting})
