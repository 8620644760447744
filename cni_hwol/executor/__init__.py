"""The warm executor: CNI verbs in a pre-imported process, one fresh fork each.

Every pod event execs the plugin anew, and on a small node the imports a netlink
verb needs (pyroute2's codecs and the stdlib they pull in) cost several times
the verb's own work, and a Python process alone takes ~15 ms to start.
`cni-hwol executor` (run by the DaemonSet) imports everything once and waits on
a unix socket. What kubelet execs is `shim.c`, a static C front that starts in
well under a millisecond: it hands the executor the invocation (argv,
environment, its stdin/stdout/stderr and its mount and network namespaces) and
exits with the status of the fork that ran it.

The fork is the same process a direct exec would have been: single-threaded, in
the front's namespaces, with its fds and environment, reading stdin and writing
the result itself. Locks, crash points and SIGKILL behave alike. Without an
executor (not running, another version, a caller it does not trust, no answer)
the front execs the Python executable beside it, which runs the verb in its own
process, so the executor only ever saves time, and never lends its privileges.

protocol.py is the wire format; shim.c is its client and server.py its server.
"""
