"""lagwatch: Burrow's consumer-lag evaluation as a Prometheus exporter."""

__version__ = "0.1.0"
