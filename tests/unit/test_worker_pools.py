"""Each worker's database pool (app/workers.py): what was asked, unless N workers' pools and LISTEN
connections would not fit in what PostgreSQL allows."""

from __future__ import annotations

import pytest

from app.cli_input import CommandError
from app.workers import pool_size_per_worker


def test_pools_that_fit_are_left_as_asked() -> None:
    assert pool_size_per_worker(wanted=20, workers=2, allowed=97) == 20


def test_pools_are_lowered_until_every_worker_fits_with_connections_to_spare() -> None:
    # 97 allowed (PostgreSQL's 100 less 3 for superusers), 5 spare: 92 for 16 workers, 5 each, of
    # which one LISTENs.
    size = pool_size_per_worker(wanted=20, workers=16, allowed=97)
    assert size == 4
    assert 16 * (size + 1) + 5 <= 97


def test_more_workers_than_the_database_can_hold_is_a_clear_error() -> None:
    with pytest.raises(CommandError, match=r"MODELGATE_WORKERS=64 needs at least 133 database connections"):
        pool_size_per_worker(wanted=20, workers=64, allowed=97)
