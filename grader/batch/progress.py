"""What `grade-all` shows while it runs: a progress bar on a terminal (done/total, failures,
rate, time left), one plain line per submission otherwise (a log, CI)."""
from __future__ import annotations

import shutil
import sys


class BatchProgress:
    def __init__(self, quiet: bool = False, stream=None):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.terminal = self.stream.isatty()
        self.bar = None
        self.done = self.total = self.failed = self.skipped = 0

    def __call__(self, event: str, entry, reply) -> None:
        if self.quiet:
            return
        if event == "skip":
            self.skipped += 1
        elif event == "start":
            self.total = reply
            if self.skipped:
                self._line(f"{self.skipped} submission(s) already graded at this version: skipped")
            if self.terminal and self.total:
                from tqdm import tqdm
                # a terminal that reports no size (a fresh pseudo-terminal) still gets a bar: tqdm
                # would draw nothing on a screen 0 rows high
                size = shutil.get_terminal_size((100, 24))
                self.bar = tqdm(total=self.total, unit="submission", file=self.stream, ncols=size.columns,
                                nrows=max(size.lines, 2), desc="grading")
        elif event == "done":
            self.done += 1
            failed = reply["status"] != "graded"
            self.failed += failed
            if self.bar is not None:
                self.bar.set_postfix(failed=self.failed, refresh=False)
                self.bar.update(1)
            else:
                what = reply["message"] if failed else f"{reply['score']:g} / {reply['max_score']:g}"
                self._line(f"[{self.done}/{self.total}] {entry.name}: {what} ({reply.get('seconds', 0):.1f} s)")

    def _line(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
