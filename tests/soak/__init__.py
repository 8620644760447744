"""The chaos soak (issue 21): a seeded, bounded random run of pod events and faults on a
simulated node, checking the node's invariants after every step (tests/README.md, "Chaos soak")."""
