"""The pure core: value types, the decoder, storage, Burrow's rules and the figures beside them.
No event loop, no Kafka client, no HTTP, no clock: every function takes `now` as an argument."""
