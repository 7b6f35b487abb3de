"""The committed studies stay what they claim: every run directory is named by its config's identity (so a
sweep still skips it), and every table of a study reported by today's code regenerates byte-identically.

The `-v1` studies are kept as their code wrote them (docs/results-fashion-mnist.md says what they were): their
runs are checked, their tables are not regenerated.
"""

from pathlib import Path

import pytest

from tests.conftest import ROOT
from wmprune import results
from wmprune.catalog import load_config

STUDIES = ROOT / "results"
# study → the report flags its Makefile target uses
REPORTED = {"fashion-mnist": [], "fashion-mnist-ablation": ["--reference", "momentum-weightmom"],
            "digits-compare": [], "digits": [], "fashion-mnist-pilot": []}


def _run_directories() -> list[Path]:
    return sorted(path.parent for path in STUDIES.glob(f"*/runs/*/{results.CONFIG}"))


@pytest.mark.slow
def test_every_committed_run_directory_is_named_by_its_config_identity():
    directories = _run_directories()
    assert len(directories) > 400
    wrong = []
    for directory in directories:
        cfg = load_config(directory / results.CONFIG)
        if directory.name != f"{cfg.name}-{cfg.short_hash()}":
            wrong.append(f"{directory.relative_to(STUDIES)} ≠ {cfg.name}-{cfg.short_hash()}")
    assert not wrong, wrong[:5]


@pytest.mark.parametrize("study", sorted(REPORTED))
def test_committed_tables_regenerate_byte_identically(study, cli, tmp_path):
    tables = STUDIES / study / "tables"
    if not (STUDIES / study / "runs").is_dir() or not tables.is_dir():
        pytest.skip(f"{study} has no committed tables yet")
    code, _, err = cli("report", STUDIES / study / "runs", "--out", tmp_path, *REPORTED[study])
    assert code == 0, err
    committed = {path.name: path.read_bytes() for path in tables.iterdir() if path.is_file()}
    regenerated = {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}
    assert regenerated == committed
