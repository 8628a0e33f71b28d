"""`lagwatch demo workload`: producers and consumer groups that behave in named ways, for demos and tests.

Each scenario owns a topic and a consumer group, both named `<prefix>-<scenario>`. A producer writes to every
partition of the topic at a steady rate; the group's consumer commits explicit offsets once per commit
interval, chosen by `planned_offset` so that Burrow's rules give the scenario's status (docs/workload.md):

    healthy            consumes everything, commits the end offset           OK
    slow               consumes a quarter of what is produced                WARN
    stalled            consumes once, then commits that same offset forever  STALL (group ERR)
    stopped            commits like healthy for `phase` commits, then leaves STOP (group ERR)
    rewound            cycles: `phase` healthy commits, a rewind to half the  REWIND during the hold
                       offset, then `phase - 2` commits holding it
    consumer-protocol  Kafka's console consumer with group.protocol=consumer  OK (KIP-848 group)

scenarios.py holds the names, the configuration and `planned_offset`, pure and unit-tested against the
evaluator; consumers.py the scenarios' consumers, runner.py the `Workload` (topics, producer, consumers) and
command.py the command line. The rest is the asyncio shell around aiokafka.

Only PLAINTEXT listeners are supported: this drives test and demo clusters, not production ones.
"""
