"""The warm executor: CNI verbs in a pre-imported process, one fresh fork each.

Every pod event execs the plugin anew, and on a small node the imports a netlink
verb needs (pyroute2's codecs and the stdlib they pull in) cost several times
the verb's own work. `cni-hwol executor` (run by the DaemonSet) imports them
once and waits on a unix socket; the exec'd plugin, a thin client, hands it the
invocation (argv, environment, its stdin/stdout/stderr and its mount and network
namespaces) and exits with the status of the fork that ran it.

The fork is the same process a direct exec would have been: single-threaded, in
the client's namespaces, with the client's fds and environment, reading stdin
and writing the result itself. Locks, crash points and SIGKILL behave alike.
Without an executor (not running, another version, no answer) the plugin runs
the verb in its own process as before, so the executor only ever saves time.
"""
