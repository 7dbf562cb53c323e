"""The app on uvicorn, on a socket bound only now (after the model's warm-up), until SIGTERM or Ctrl-C: then no new
connections, the requests in flight answered, and a normal return (exit status 0).

uvicorn handles both signals gracefully, then raises the signal again with the handler that was there before it
started -- the default one would end the process by the signal (status -15) after a clean shutdown -- so the
handler left in place here only asks the server to stop.
"""
from __future__ import annotations

import signal
import socket

import uvicorn

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` and listening (port 0: one the system picks); connections made
    before the server accepts them wait in its backlog rather than being refused."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say so, and without it Nagle's
    # algorithm holds an answer's body until the client's delayed ACK of its headers, 40 ms on every answer.
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart at once on the same port
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def serve(app, sock: socket.socket, log_level: str = "info") -> None:
    """Serve ``app`` on ``sock`` until SIGTERM or SIGINT, finishing the requests in flight."""
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=None,
                                           lifespan="off"))

    def stop(signum, frame):  # after uvicorn's shutdown, its re-raised signal lands here: nothing is left to do
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
