"""Checking the address the viewer listens on before the server starts.

viser moves on to the next port when the one asked for is taken; a person who typed
``--port 8080`` and opened ``http://127.0.0.1:8080`` would then look at whatever else holds
that port. The viewer refuses instead, in one line.
"""

from __future__ import annotations

import errno
import socket

from gs_core.errors import GS3DError

# Addresses that reach only this machine; anything else is announced as reachable from others.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def check_port_free(host: str, port: int) -> None:
    """Raise one :class:`GS3DError` line when ``host:port`` cannot be listened on (``port`` 0:
    any free port, always fine when the host is)."""
    if not 0 <= port <= 65535:
        raise GS3DError(f"--port {port}: expected a port number in 0..65535 (0: any free port)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise GS3DError(f"--host {host}: not an address of this machine ({e.strerror})") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # The server sets SO_REUSEADDR too, so a port left in TIME_WAIT by a viewer that just
        # stopped counts as free here as it does there.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise GS3DError(
                    f"--port {port}: already in use on {host} (another viewer or server?); "
                    "choose another with --port N, or --port 0 for any free port"
                ) from None
            raise GS3DError(
                f"--host {host} --port {port}: cannot listen there ({e.strerror})"
            ) from None


__all__ = ["LOOPBACK_HOSTS", "check_port_free"]
