"""doctor's kernel and glibc check (docs/packaging.md, "Which nodes"): 4.18 and 2.28 or newer."""

from __future__ import annotations

import pytest

from cni_hwol.tools.doctor import check_platform
from cni_hwol.tools.report import Report


@pytest.mark.parametrize(
    ("kernel", "glibc", "passed"),
    [
        ("4.18.0-553.el8_10.x86_64", "2.28", {"kernel", "glibc"}),
        ("6.1.0-56-amd64", "2.36", {"kernel", "glibc"}),
        ("4.17.19", "2.28", {"glibc"}),
        ("3.10.0-1160.el7.x86_64", "2.17", set()),
        ("5.14.0", "2.27", {"kernel"}),
    ],
)
def test_the_kernel_and_glibc_check_passes_from_the_minimum_on(kernel, glibc, passed):
    report = Report("doctor")
    check_platform(report, kernel=kernel, glibc=glibc)
    assert {c.name for c in report.checks if c.ok} == passed
    assert {c.name for c in report.checks} == {"kernel", "glibc"}


def test_the_check_reads_this_machine_when_given_nothing():
    report = Report("doctor")
    check_platform(report)
    assert all(c.ok for c in report.checks), report.checks
