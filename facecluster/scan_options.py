"""What a scan is asked to do (`facecluster scan`'s options), read by the driver and by every worker."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from facecluster import config
from facecluster.decode import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIDE
from facecluster.distributed import check_installed
from facecluster.errors import UsageProblem
from facecluster.models import DEFAULT_PACK


@dataclass(frozen=True)
class ScanOptions:
    model: str = DEFAULT_PACK
    jobs: int = field(default_factory=config.default_jobs)
    include_hidden: bool = False
    exclude: tuple[str, ...] = ()
    prune: bool = False
    yes: bool = False  # --prune may remove named faces
    det_size: int = config.DETECTION_SIZE
    det_threshold: float = config.DETECTION_THRESHOLD
    max_side: int = DEFAULT_MAX_SIDE
    max_pixels: int = DEFAULT_MAX_PIXELS
    batch: int = config.BATCH_PHOTOS
    dask: str | None = None  # a Dask scheduler's address: analyse on its workers, not in local processes
    no_video: bool = False  # --no-video: videos are not read (Live Photo videos never are)

    def check(self) -> None:
        for name in ("jobs", "det_size", "max_side", "max_pixels", "batch"):
            if getattr(self, name) < 1:
                raise UsageProblem(f"--{name.replace('_', '-')} must be a positive number")
        if self.jobs > max_jobs():
            raise UsageProblem(
                f"--jobs must be at most {max_jobs()} on this machine ({config.JOBS_PER_CORE_MAX} per core; "
                "each worker holds its own models, about 300 MB)"
            )
        low, high = config.DETECTION_SIZE_RANGE
        if not low <= self.det_size <= high:
            raise UsageProblem(f"--det-size must be between {low} and {high} pixels")
        if not (math.isfinite(self.det_threshold) and 0 < self.det_threshold < 1):
            raise UsageProblem("--det-threshold must be between 0 and 1")
        if self.dask is not None:
            check_installed()

    @property
    def settings(self) -> tuple[int, float]:
        """The detection settings recorded with each photo scanned (a change re-detects it)."""
        return self.det_size, round(float(self.det_threshold), 4)


def max_jobs() -> int:
    """The most worker processes `--jobs` may ask for here."""
    return config.JOBS_PER_CORE_MAX * config.default_jobs()

