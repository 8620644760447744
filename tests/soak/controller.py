"""ovn-controller as the soak plays it: it sets the keys an ADD waits for (waitForExternalIDs).

While an ADD runs, a thread watches the representor's Interface rows of that attachment (its
container id in cni-hwol's external_ids); each row without the keys gets them `delay` seconds
after it was first seen. Rows are found by attachment, not by name: a port left from an earlier
attachment of the same VF may still carry the name until ADD replaces it.
"""

from __future__ import annotations

import json
import threading

from cni_hwol.ovsdb.ports import CONTAINER_ID_KEY
from tests.simnode.ovs import Ovs

POLL_S = 0.05


class OvnController:
    def __init__(self, ovs: Ovs, representor: str, container_id: str, keys: dict[str, str], delay: float) -> None:
        self.ovs, self.representor, self.container_id = ovs, representor, container_id
        self.keys, self.delay = keys, delay
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def __enter__(self) -> OvnController:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join()

    def waiting_rows(self) -> list[str]:
        """The uuids of this attachment's Interface rows that lack the keys (none while OVSDB is away)."""
        query = ("find", "Interface", f"name={self.representor}")
        out = self.ovs.vsctl("--format=json", "--columns=_uuid,external_ids", *query, check=False)
        rows = json.loads(out)["data"] if out else []
        found = []
        for (_, uuid), (_, ids) in rows:
            ids = dict(ids)
            if ids.get(CONTAINER_ID_KEY) == self.container_id and any(ids.get(k) != v for k, v in self.keys.items()):
                found.append(uuid)
        return found

    def run(self) -> None:
        seen: dict[str, float] = {}  # row uuid -> how long it has been waiting
        while not self.stopping.wait(POLL_S):
            for uuid in self.waiting_rows():
                seen[uuid] = seen.get(uuid, 0.0) + POLL_S
                if seen[uuid] >= self.delay:
                    settings = [f'external_ids:{k}="{v}"' for k, v in self.keys.items()]
                    self.ovs.vsctl("--no-wait", "--if-exists", "set", "Interface", uuid, *settings, check=False)
