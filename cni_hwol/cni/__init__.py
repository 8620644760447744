"""The CNI protocol: environment, network configuration, results and errors.

Nothing in this package touches the system; it only parses and renders, so
every rule of the spec can be tested with plain data.
"""
