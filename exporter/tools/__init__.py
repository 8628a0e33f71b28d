"""Commands beside the exporter: the `lagwatch status` client and the demo workload."""
