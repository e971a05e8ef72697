// Sluice's partition of a metrics record: crc32 of the UTF-8 run id, modulo the partitions.
// Reads "<run_id> <partitions>" lines on stdin, prints one partition per line.
package main

import (
	"bufio"
	"fmt"
	"hash/crc32"
	"os"
	"strconv"
	"strings"
)

func partitionFor(runID string, partitions uint32) uint32 {
	return crc32.ChecksumIEEE([]byte(runID)) % partitions // Go strings are UTF-8 bytes
}

func main() {
	scanner := bufio.NewScanner(os.Stdin)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		partitions, err := strconv.ParseUint(fields[1], 10, 32)
		if err != nil {
			panic(err)
		}
		fmt.Println(partitionFor(fields[0], uint32(partitions)))
	}
}
