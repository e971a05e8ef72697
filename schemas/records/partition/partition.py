"""Sluice's partition of a metrics record: crc32 of the UTF-8 run id, modulo the partitions.

Reads "<run_id> <partitions>" lines on stdin, prints one partition per line."""

import sys
import zlib


def partition_for(run_id: str, partitions: int) -> int:
    return zlib.crc32(run_id.encode("utf-8")) % partitions


if __name__ == "__main__":
    for line in sys.stdin:
        run_id, partitions = line.split()
        print(partition_for(run_id, int(partitions)))
