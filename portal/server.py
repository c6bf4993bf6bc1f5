"""Running the app under uvicorn, in one process or one per core.

With several processes, each binds its own listening socket to the same address
(``SO_REUSEPORT``), so the kernel spreads incoming connections evenly over them. Sharing one
socket, as uvicorn's own workers do, lets whichever process wakes first take a burst of
keep-alive connections: one process then serves most clients while the other idles, and the
clients on the busy one wait.
"""

from __future__ import annotations

import gc
import multiprocessing
import signal
import socket
import sys
from multiprocessing.connection import wait
from typing import Any

UVICORN_BACKLOG = 2048
APP_FACTORY = "portal.server:served_app"


# A request leaves few objects that only a reference cycle keeps alive: most die as their last
# reference goes. At the default (a pass over the young objects every 700 new containers) a busy
# server process spends about a tenth of its time in passes that find next to nothing.
COLLECTOR_THRESHOLDS = (50_000, 20, 20)


def _tune_collector_for_serving() -> None:
    """What exists once the app has started (models, routes, templates) lives as long as the
    process; frozen, it is left out of the cyclic collector's full passes, which would otherwise
    rescan all of it and stall the requests that allocate most (a batch of pings) for tens of
    milliseconds. Passes come after :data:`COLLECTOR_THRESHOLDS` new containers."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


def served_app() -> Any:
    """The application as each server process builds it (uvicorn's factory), with the
    environment's settings. A process loads the PDF renderer and its fonts before it takes
    its first request: loaded later, in a thread, they would hold the interpreter for seconds
    while requests wait, and loaded on the first document, that document would wait."""
    from infra import documents, security
    from portal.app import create_app

    app = create_app()
    app.on_startup.extend((security.warm_up, documents.warm_up, _tune_collector_for_serving))
    return app


def _listening_socket(host: str, port: int) -> socket.socket:
    family, kind, protocol, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    listener = socket.socket(family, kind, protocol)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind(address)
    listener.listen(UVICORN_BACKLOG)
    listener.set_inheritable(True)
    return listener


def _serve_one(host: str, port: int, options: dict[str, Any]) -> None:
    import uvicorn

    listener = _listening_socket(host, port)
    config = uvicorn.Config(APP_FACTORY, factory=True, host=host, port=port, **options)
    uvicorn.Server(config).run(sockets=[listener])


def run_server(*, host: str, port: int, workers: int = 1, **options: Any) -> None:
    """Serve on ``host:port`` in ``workers`` processes, each with its own connection pool, until
    told to stop (SIGINT or SIGTERM, passed on to every process). If one process ends, the others
    are stopped too and the exit status says so: a service manager restarts the whole server."""
    if workers == 1:
        import uvicorn

        uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, **options)
        return
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_serve_one, args=(host, port, options), name=f"portal-web-{n}")
        for n in range(workers)
    ]
    for process in processes:
        process.start()
    asked_to_stop = False

    def stop(_signal: int, _frame: Any) -> None:
        nonlocal asked_to_stop
        asked_to_stop = True
        for process in processes:
            if process.is_alive():
                process.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    wait([process.sentinel for process in processes])
    crashed = not asked_to_stop
    for process in processes:
        if process.is_alive():
            process.terminate()
        process.join()
    sys.exit(1 if crashed else 0)
