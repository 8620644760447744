"""A blocking netlink socket that speaks through pyroute2's message codecs.

pyroute2's IPRoute and DL run an asyncio event loop and import about 100 ms of
modules on every exec; a CNI plugin sends a dozen requests and exits. So we
keep pyroute2 for what it is best at, encoding and decoding messages and
their attributes, and send them over a plain socket: one request, its replies,
its ack, in order.
"""

from __future__ import annotations

import os
import socket
import struct

from cni_hwol.linux.netns import socket_in

NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
_HEADER = struct.Struct("=IHHII")  # length, type, flags, sequence, port id


class NetlinkError(OSError):
    """The kernel refused a request; .code is the errno."""

    def __init__(self, code: int) -> None:
        super().__init__(code, os.strerror(code))
        self.code = code


class NetlinkSocket:
    def __init__(self, protocol: int, netns_fd: int | None = None) -> None:
        self.sock = socket_in(netns_fd, socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, protocol)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def request(self, msg, msg_type: int, flags: int, reply_class=None) -> list:
        """Send msg; answer the decoded replies (for a dump, all of them).

        Every request asks for an ack, so the end of a reply is always explicit.
        """
        self.seq += 1
        msg["header"]["type"] = msg_type
        msg["header"]["flags"] = flags | NLM_F_REQUEST | NLM_F_ACK
        msg["header"]["sequence_number"] = self.seq
        msg["header"]["pid"] = 0
        msg.encode()
        self.sock.send(msg.data)
        reply_class = reply_class or type(msg)
        replies = []
        while True:
            data = self.sock.recv(1 << 16)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, kind, _, seq, _ = _HEADER.unpack_from(data, offset)
                if length < _HEADER.size:
                    raise NetlinkError(71)  # EPROTO: a malformed reply
                if seq == self.seq:
                    if kind == NLMSG_ERROR:
                        error = struct.unpack_from("=i", data, offset + _HEADER.size)[0]
                        if error:
                            raise NetlinkError(-error)
                        return replies  # the ack
                    if kind == NLMSG_DONE:
                        return replies
                    reply = reply_class(data[offset : offset + length])
                    reply.decode()
                    replies.append(reply)
                offset += (length + 3) & ~3
