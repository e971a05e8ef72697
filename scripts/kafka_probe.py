"""Ask one Kafka broker what it knows, with nothing but the standard library.

Usage: python3 kafka_probe.py HOST PORT [--in-sync] [NODE_ID ...]

Sends one Metadata v4 request and prints the live broker ids it returns.
Exit 0 when the broker answered and every NODE_ID is among the live brokers; with
--in-sync, each NODE_ID must also be in the ISR of every partition it replicates
(a restarted node has caught up). Exit 1 otherwise.

A KRaft broker only serves requests once it is unfenced, so an answer listing a node
means that node can take traffic. Used by kafka.sh as its readiness check, where a
JVM admin tool would cost ~2 s per poll on a 2-core box.
"""

import socket
import struct
import sys
from dataclasses import dataclass

METADATA_API_KEY = 3
METADATA_VERSION = 4  # lowest version Kafka 4.x still accepts (KIP-896); not "flexible"
CORRELATION_ID = 7


@dataclass
class Metadata:
    brokers: list[int]
    replicas_and_isr: list[tuple[list[int], list[int]]]  # one entry per partition


class Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return int(value)

    def skip_string(self) -> None:
        length = self.take(">h")  # read first: it moves self.pos
        self.pos += max(length, 0)  # -1 is a null string

    def int_array(self) -> list[int]:
        return [self.take(">i") for _ in range(self.take(">i"))]


def metadata_request(all_topics: bool) -> bytes:
    client_id = b"sluice-probe"
    header = struct.pack(
        ">hhih", METADATA_API_KEY, METADATA_VERSION, CORRELATION_ID, len(client_id)
    )
    topics = -1 if all_topics else 0  # null array: every topic; empty array: none
    payload = header + client_id + struct.pack(">ib", topics, 0)  # 0: no auto-creation
    return struct.pack(">i", len(payload)) + payload


def parse_metadata(response: bytes) -> Metadata:
    r = Reader(response)
    if r.take(">i") != CORRELATION_ID:
        raise ValueError("unexpected correlation id")
    r.take(">i")  # throttle_time_ms
    brokers = []
    for _ in range(r.take(">i")):
        brokers.append(r.take(">i"))
        r.skip_string()  # host
        r.take(">i")  # port
        r.skip_string()  # rack
    r.skip_string()  # cluster_id
    r.take(">i")  # controller_id
    partitions = []
    for _ in range(r.take(">i")):
        r.take(">h")  # topic error_code
        r.skip_string()  # name
        r.take(">b")  # is_internal
        for _ in range(r.take(">i")):
            r.take(">h")  # partition error_code
            r.take(">i")  # partition_index
            r.take(">i")  # leader_id
            partitions.append((r.int_array(), r.int_array()))
    return Metadata(brokers, partitions)


def recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks.extend(chunk)
    return bytes(chunks)


def fetch_metadata(host: str, port: int, all_topics: bool) -> Metadata:
    with socket.create_connection((host, port), timeout=2.0) as sock:
        sock.sendall(metadata_request(all_topics))
        (size,) = struct.unpack(">i", recv_exact(sock, 4))
        return parse_metadata(recv_exact(sock, size))


def lagging(meta: Metadata, nodes: set[int]) -> set[int]:
    return {
        node
        for replicas, isr in meta.replicas_and_isr
        for node in nodes
        if node in replicas and node not in isr
    }


def main(argv: list[str]) -> int:
    in_sync = "--in-sync" in argv
    args = [a for a in argv if a != "--in-sync"]
    host, port, expected = args[0], int(args[1]), {int(i) for i in args[2:]}
    try:
        meta = fetch_metadata(host, port, all_topics=in_sync)
    except (OSError, ValueError, struct.error) as exc:
        print(f"no answer from {host}:{port}: {exc}", file=sys.stderr)
        return 1
    print(" ".join(str(i) for i in sorted(meta.brokers)))
    if not expected <= set(meta.brokers):
        return 1
    return 1 if in_sync and lagging(meta, expected) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
