"""The result store: one JSON object per line, appended as each result lands.

Why JSON lines and not SQLite: a record is written by one ``write`` of one line and flushed to disk, so a
killed run loses at most the line it was writing (which the reader skips, with a warning) and never an
earlier one; the file diffs and merges in git like the other committed results; and any tool reads it.
The store is small (hundreds of records), so reading it whole is instant.

Record types (field ``type``):

- ``cell``: a cell's training data was made: its suite, name, key, full config, the machine, commit,
  wall time, distillation time and iterations, peak memory, stored bytes, and where the artifact is;
- ``eval``: one protocol's evaluation of a cell: the key of the cell it evaluated, the protocol, the
  :class:`~gendistill.evaluate.EvalReport` as a dict, wall time;
- ``imported``: a result committed before the store existed (``benchmarks/results/*.json``), carried over
  as it was, with its source file and key.

Every record carries ``format``; a store written by a newer gendistill (a higher format) is refused.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from gendistill.errors import UserError
from gendistill.io import dumps

logger = logging.getLogger(__name__)

FORMAT = 1


class ResultStore:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._records: list[dict] = []
        if self.path.is_dir():
            raise UserError(f"store {self.path} is a folder; give the path of a .jsonl file")
        if self.path.is_file():
            self._records = self._read()

    def _read(self) -> list[dict]:
        try:
            lines = self.path.read_text().splitlines()
        except UnicodeDecodeError:
            raise UserError(f"{self.path} is not a text file; pass a .jsonl store from gendistill bench") from None
        cut, records = [], []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a write cut off by a kill; later appends start on a new line
                cut.append(number)
                continue
            if not isinstance(record, dict) or "type" not in record:
                raise UserError(f"{self.path} line {number} is not a store record")
            if record.get("format", 0) > FORMAT:
                raise UserError(
                    f"{self.path} was written by a newer gendistill (store format {record['format']}, "
                    f"this one reads up to {FORMAT}); upgrade gendistill to use it"
                )
            records.append(record)
        if cut and not records:
            raise UserError(
                f"{self.path} holds no store record (line {cut[0]} is not JSON); pass a .jsonl store "
                "written by gendistill bench"
            )
        for number in cut:
            logger.warning("%s line %d is cut off (an interrupted write); skipped", self.path, number)
        return records

    def records(self, type: str | None = None) -> list[dict]:
        return [r for r in self._records if type is None or r["type"] == type]

    def append(self, record: dict) -> dict:
        """Add one record: one line, flushed and synced before this returns."""
        record = {"format": FORMAT, **record}
        line = dumps(record, sort_keys=False, default=str) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as f:
            if f.tell() > 0:  # a line cut off by a kill must not swallow this one
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.write(b"\n")
            f.write(line.encode())
            f.flush()
            os.fsync(f.fileno())
        self._records.append(record)
        return record

    def find(self, type: str, **match: object) -> dict | None:
        """The newest record of ``type`` whose fields equal ``match``."""
        for r in reversed(self._records):
            if r["type"] == type and all(r.get(k) == v for k, v in match.items()):
                return r
        return None
