"""tests/README.md's claims table is the mutants' own: every claim names a test that exists and a
break (tests/mutants/*.patch) that makes it fail, and the table is regenerated, never hand-edited."""

from __future__ import annotations

import re
from pathlib import Path

from tests.mutants.run import REPO, all_mutants, claims_table, readme_table


def test_the_readme_table_is_the_one_the_mutants_make():
    assert readme_table() == claims_table(all_mutants()), "run: python3 -m tests.mutants.run --update-readme"


def test_every_mutant_names_a_claim_and_tests_that_exist():
    for mutant in all_mutants():
        assert mutant.claim != "?" and mutant.claim.strip(), mutant.name
        assert re.search(r"^(\+\+\+|---) [ab]/", mutant.path.read_text(), re.M), f"{mutant.name}: no diff"
        for test in mutant.tests:
            path, _, name = test.partition("::")
            source = REPO / path
            assert source.is_file(), f"{mutant.name}: {path} does not exist"
            function = re.sub(r"\[.*\]$", "", name).split("::")[-1]
            assert not function or re.search(rf"def {re.escape(function)}\b", source.read_text()), (
                f"{mutant.name}: no {function} in {path}"
            )


def test_a_mutant_is_named_after_its_file():
    names = [m.name for m in all_mutants()]
    assert len(names) == len(set(names)) and all(Path(REPO, "tests/mutants", f"{n}.patch").is_file() for n in names)
