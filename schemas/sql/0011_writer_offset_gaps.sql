-- Gaps an operator acknowledged with `sluice acknowledge-gap`: Kafka's retention deleted records
-- [from_offset, to_offset) of a partition before a writer stored them. The stored offset was
-- moved to to_offset in the same transaction; this row is the audit trail of what was lost.
CREATE TABLE writer_offset_gaps (
    topic           text        NOT NULL,
    partition       int         NOT NULL,
    from_offset     bigint      NOT NULL,
    to_offset       bigint      NOT NULL,
    acknowledged_at timestamptz NOT NULL DEFAULT now(),
    acknowledged_by text        NOT NULL,
    PRIMARY KEY (topic, partition, from_offset)
);
