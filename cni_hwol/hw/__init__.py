"""Hardware discovery: which VF a PCI address is, its PF, and its representor.

Reads sysfs (under a configurable root) and asks devlink; changes nothing.
"""
