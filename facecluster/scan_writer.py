"""The scan's one writer: worker results -> store calls, committed a batch of files at a time,
counted in the scan's summary."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from facecluster import config
from facecluster.crawl import CrawlWarning
from facecluster.records import FileResult, PhotoFacts
from facecluster.store import Decisions, Failure, PhotoRow, Store


@dataclass
class ScanSummary:
    """What a scan did: the writer counts the files it saves, the driver the rest."""

    roots: list[str]
    model: str
    seen: int = 0  # candidate files found on disk
    new: int = 0
    changed: int = 0
    moved: int = 0
    unchanged: int = 0  # skipped: same path, size and mtime
    failed: int = 0  # failed this run
    faces: int = 0  # faces found (or carried over) this run
    seconds: float = 0.0
    redetected: int = 0  # unchanged files detected again because --det-size/--det-threshold changed
    missing: list[str] = field(default_factory=list)  # in the database, really gone from disk
    kept_unseen: int = 0  # in the database, not crawled (excluded, hidden, unreadable folder) but on disk: kept
    pruned: int = 0
    pruned_decisions: Decisions = field(default_factory=Decisions)  # what --prune --yes removed with the photos
    prune_refused: int = 0  # faces holding a decision that --prune would have removed without --yes
    prune_refused_decisions: Decisions = field(default_factory=Decisions)
    failures: list[Failure] = field(default_factory=list)  # every failing file under the roots
    warnings: list[CrawlWarning] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)  # files read this run, by kind (photo, motion, raw, video)
    companions: dict[str, int] = field(default_factory=dict)  # files not scanned as part of another's shot, by kind
    skipped: dict[str, int] = field(default_factory=dict)  # files not read, by reason ("unknown type", "sidecar", ...)

    @property
    def photos_per_second(self) -> float:
        worked = self.new + self.changed + self.moved + self.redetected + self.failed
        return worked / self.seconds if self.seconds > 0 else 0.0


class ResultWriter:
    """Turns worker results into store calls, committed `batch` photos at a time."""

    def __init__(self, store: Store, model: str, index: dict[str, PhotoRow], summary: ScanSummary, batch: int,
                 settings: tuple[int, float] = (config.DETECTION_SIZE, config.DETECTION_THRESHOLD)):
        self.store, self.model, self.index, self.summary, self.batch = store, model, index, summary, batch
        self.settings = settings
        self.pending: list[FileResult] = []
        self.moved_ids: set[int] = set()

    def add(self, result: FileResult) -> None:
        self.pending.append(result)
        if len(self.pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        with self.store.transaction():
            for result in self.pending:
                try:
                    with self.store.transaction():  # a savepoint: one file's failure undoes only that file
                        self._save(result)
                except (OverflowError, ValueError, TypeError) as e:
                    # A value SQLite cannot hold: that file fails, the rest of the batch is saved.
                    self._save_failure(result, f"cannot be stored: {type(e).__name__}: {str(e)[:200]}")
        self.pending = []

    def _save_failure(self, result: FileResult, reason: str) -> None:
        existing = self.index.get(result.facts.path)
        facts = PhotoFacts(path=result.facts.path, size=result.facts.size, mtime_ns=result.facts.mtime_ns, error=reason)
        try:
            with self.store.transaction():
                self.store.save_failure(facts, existing.id if existing else None)
        except (OverflowError, ValueError, TypeError):
            self.summary.warnings.append(CrawlWarning(facts.path, reason))
        self.summary.failed += 1

    def _save(self, result: FileResult) -> None:
        facts, store, s = result.facts, self.store, self.summary
        existing = self.index.get(facts.path)
        existing_id = existing.id if existing else None
        if result.note:
            s.warnings.append(CrawlWarning(facts.path, result.note))
        if facts.error is not None:
            store.save_failure(facts, existing_id)
            s.failed += 1
            return
        kind = facts.kind or "photo"
        s.kinds[kind] = s.kinds.get(kind, 0) + 1
        if result.reused:
            if existing is not None and existing.sha256 == facts.sha256:
                store.touch_photo(existing.id, facts)  # same content, new mtime
                s.unchanged += 1
                return
            twins = store.photos_with_hash(facts.sha256, self.model, self.settings)
            gone = [t for t in twins if t.path != facts.path and not os.path.exists(t.path)]
            if gone and existing is None:
                store.move_photo(gone[0].id, facts)
                self.moved_ids.add(gone[0].id)
                self.index[facts.path] = gone[0]
                s.moved += 1
                return
            if twins:
                store.copy_photo(twins[0].id, facts, self.model, existing_id, self.settings)
                s.changed += existing is not None
                s.new += existing is None
                return
            # The twin was deleted between the worker's look and now: nothing to
            # copy from, so record the file for the next scan to redo.
            store.save_failure(replace(facts, error="its twin vanished during the scan; scan again"), existing_id)
            s.failed += 1
            return
        same_content = existing is not None and existing.sha256 == facts.sha256 and existing.status == "ok"
        store.save_photo(facts, result.faces, self.model, existing_id, self.settings, keep_people=same_content)
        s.faces += len(result.faces)
        if existing is None:
            s.new += 1
        elif not same_content:
            s.changed += 1
