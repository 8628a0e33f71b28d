"""`python -m exporter.tools.workload`."""

from exporter.tools.workload.command import main

if __name__ == "__main__":
    raise SystemExit(main())
