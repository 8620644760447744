"""32 pods on 32 VFs, added and deleted all at once, twice: no failure, no VF or
address given twice, nothing left behind."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import _require_e2e


@pytest.fixture
def big_node():
    _require_e2e()
    from tests.simnode import SimNode

    with SimNode(pfs=2, vfs_per_pf=16) as sim:
        yield sim


def test_32_parallel_adds_then_32_parallel_dels(big_node):
    node = big_node
    node.write_conflist("hwol", chained=False)
    before = node.snapshot()
    pods = [(node.create_pod(f"p{i}"), vf) for i, vf in enumerate(node.vfs)]
    assert len(pods) == 32
    for _ in range(2):
        with ThreadPoolExecutor(32) as pool:
            adds = list(pool.map(lambda pv: node.cnitool_run("add", pv[0], pv[1].pci, check=False), pods))
        assert [a.stderr.decode() for a in adds if a.returncode] == []
        results = [json.loads(a.stdout) for a in adds]
        assert len({r["ips"][0]["address"] for r in results}) == 32
        assert len({r["interfaces"][0]["name"] for r in results}) == 32
        assert len(node.ovs.ports("br-int")) == 32
        with ThreadPoolExecutor(32) as pool:
            dels = list(pool.map(lambda pv: node.cnitool_run("del", pv[0], check=False), pods))
        assert [d.stderr.decode() for d in dels if d.returncode] == []
        assert node.snapshot() == before
