// Sluice's partition of a metrics record: crc32 of the UTF-8 run id, modulo the partitions.
// Reads "<run_id> <partitions>" lines on stdin, prints one partition per line.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32;

public final class Partition {
    public static int partitionFor(String runId, int partitions) {
        CRC32 crc = new CRC32();
        crc.update(runId.getBytes(StandardCharsets.UTF_8));
        return (int) (crc.getValue() % partitions); // getValue() is unsigned (0 .. 2^32-1)
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null; ) {
            String[] parts = line.trim().split("\\s+");
            System.out.println(partitionFor(parts[0], Integer.parseInt(parts[1])));
        }
    }
}
