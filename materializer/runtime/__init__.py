"""The materializer's Kafka runtime, one concern per module; `materializer.runner.Materializer`
wires it. Dependencies run one way: facade -> stream reader -> rebalance -> partition worker ->
(transaction, parked log, pausing, table reader) -> (dead letters, counters, topic metadata)."""
