"""The cni-hwol executable: CNI verbs from the environment, or operator commands.

On a node, kubelet execs the static front beside this executable
(cni_hwol/executor/shim.c), which hands every verb to the node's warm executor;
this process runs a verb only when no executor took it, or when run directly
(the source tree). So the path to a verb loads as little as it can: VERSION
imports nothing, and every other verb imports only what it runs
(run_in_process), exactly as the executor's fork does.
"""

from __future__ import annotations

import os
import sys

from cni_hwol import __version__


def _reply_version(data: bytes) -> str:
    """The cniVersion to answer errors in: the config's, when we speak it."""
    import json

    from cni_hwol.cni.versions import LATEST_VERSION, SUPPORTED_VERSIONS

    try:
        version = json.loads(data).get("cniVersion")
    except (ValueError, AttributeError):
        return LATEST_VERSION
    return version if version in SUPPORTED_VERSIONS else LATEST_VERSION


def run_cni(environ: dict[str, str], stdin: bytes) -> tuple[int, str]:
    """One CNI invocation: answers (exit status, stdout text)."""
    import logging

    from cni_hwol.cni.env import parse_env
    from cni_hwol.cni.errors import INTERNAL_ERROR, CNIError
    from cni_hwol.cni.netconf import MAX_STDIN_BYTES, parse_netconf
    from cni_hwol.cni.versions import require_verb_in_version, version_json

    log = logging.getLogger("cni_hwol")
    if environ.get("CNI_COMMAND") == "VERSION":
        return 0, version_json()  # ignores every other variable (libcni validates with "dummy" ones)
    reply_version = _reply_version(stdin[: MAX_STDIN_BYTES + 1])
    try:
        env = parse_env(environ)
        from cni_hwol.cni.policy import apply_node_policy
        from cni_hwol.logs import setup_logging
        from cni_hwol.nodeconf import read_node_policy

        node, context = read_node_policy(environ), f"{env.command} {env.container_id} {env.ifname}".strip()
        try:
            conf = apply_node_policy(parse_netconf(stdin), node)
        except CNIError:
            if node is not None:  # a refusal goes to the node's log, never to a file the netconf named
                setup_logging(node.node.log_file, node.node.log_level, context)
            raise
        setup_logging(conf.log_file, conf.log_level, context)
        require_verb_in_version(env.command, conf.cni_version)
        return 0, _dispatch(env, conf, environ)
    except CNIError as exc:
        log.error("%s failed: %s", environ.get("CNI_COMMAND", "?"), exc)
        return 1, exc.to_json(reply_version)
    except Exception as exc:  # noqa: BLE001 - the runtime must get JSON, never a traceback
        log.exception("unexpected failure")
        error = CNIError(INTERNAL_ERROR, f"internal error: {type(exc).__name__}", str(exc)[:500])
        return 1, error.to_json(reply_version)


def _dispatch(env, conf, environ) -> str:
    import json

    from cni_hwol.verbs.common import Invocation

    inv = Invocation(env=env, conf=conf, environ=environ)
    if env.command == "ADD":
        from cni_hwol.verbs.add import cmd_add

        return json.dumps(cmd_add(inv))
    if env.command == "DEL":
        from cni_hwol.verbs.delete import cmd_del

        cmd_del(inv)
        return ""
    if env.command == "CHECK":
        from cni_hwol.verbs.check import cmd_check

        cmd_check(inv)
        return ""
    if env.command == "GC":
        from cni_hwol.verbs.gc import cmd_gc

        cmd_gc(inv)
        return ""
    from cni_hwol.verbs.status import cmd_status

    cmd_status(inv)
    return ""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = os.environ.get("CNI_COMMAND")
    if command is None:
        return _operator_command(args)
    if command == "VERSION":
        from cni_hwol.cni.versions import version_json

        sys.stdout.write(version_json() + "\n")
        return 0
    return run_in_process(args)


def run_in_process(args: list[str]) -> int:
    """Run the CNI verb the environment names, in this process."""
    status, output = run_cni(dict(os.environ), sys.stdin.buffer.read() if not sys.stdin.isatty() else b"")
    if output:
        sys.stdout.write(output + "\n")
        sys.stdout.flush()
    return status


def _operator_command(args: list[str]) -> int:
    """Without CNI_COMMAND the executable serves operators: version and installer."""
    if args in (["--version"], ["version"]):
        from cni_hwol.cni.versions import SUPPORTED_VERSIONS

        print(f"cni-hwol {__version__} (CNI {', '.join(SUPPORTED_VERSIONS)})")
        return 0
    if args and args[0] == "executor":
        from cni_hwol.executor.server import main as executor_main

        return executor_main(args[1:])
    if args and args[0] == "install":
        from cni_hwol.install import main as install_main

        return install_main(args[1:])
    if args and args[0] in ("doctor", "node-setup", "offload-status"):
        from cni_hwol.tools.cli import main as tools_main

        return tools_main(args[0], args[1:])
    print(
        f"cni-hwol {__version__}: a CNI plugin, run by the container runtime with CNI_COMMAND set.\n"
        "Operator commands: --version | install | executor | doctor | node-setup | offload-status (each with --help)",
        file=sys.stderr,
    )
    return 2
