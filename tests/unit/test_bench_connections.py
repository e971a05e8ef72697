"""benchmarks.procstats: which processes hold a server port's connections; the machine's busy time."""

from __future__ import annotations

import os
import socket
import time

from benchmarks.procstats import connection_owners, connection_spread, machine_busy_s


def test_counts_the_accepted_connections_of_a_listening_process() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        accepted = [server.accept()[0] for _ in clients]
        try:
            # The clients' own sockets have the port as their remote end: not counted.
            assert connection_spread(os.getpid(), port) == {
                "per_process": [2],
                "processes_listening": 1,
            }
        finally:
            for s in clients + accepted:
                s.close()


def test_a_port_nobody_uses_gives_no_connections() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    assert connection_spread(os.getpid(), port) == {"per_process": [], "processes_listening": 0}


def test_owners_name_the_process_holding_each_clients_server_end() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        accepted: list[socket.socket] = []
        try:
            ports = [c.getsockname()[1] for c in clients]
            # Not accepted yet: in the listen queue, no process holds them.
            assert connection_owners(os.getpid(), port, ports) == (
                [None, None],
                {os.getpid(): os.getppid()},
            )
            accepted += [server.accept()[0] for _ in clients]
            owners, listeners = connection_owners(os.getpid(), port, [*ports, 1])
            assert owners == [os.getpid(), os.getpid(), None]
            assert listeners == {os.getpid(): os.getppid()}
        finally:
            for s in clients + accepted:
                s.close()


def test_machine_busy_time_counts_this_process_spinning() -> None:
    before_busy, before_own = machine_busy_s(), time.process_time()
    deadline = time.perf_counter() + 0.3
    while time.perf_counter() < deadline:
        pass
    spun = time.process_time() - before_own
    # the machine was busy at least while this process spun (clock ticks: 10 ms resolution)
    assert machine_busy_s() - before_busy >= spun - 0.05
