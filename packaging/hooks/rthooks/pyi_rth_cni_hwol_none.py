# cni-hwol replaces PyInstaller's default run-time hooks for inspect, pkgutil and
# multiprocessing with this empty one (packaging/hooks/rthooks.dat; see docs/packaging.md).
#
# Those hooks run before the plugin on every exec and import inspect, zipfile and
# multiprocessing eagerly: about 25 ms of a CNI verb that is meant to take a few.
# What they fix is not used here: the plugin never reads source code through
# inspect, never lists frozen packages with pkgutil.iter_modules, and never starts
# multiprocessing workers.
