"""The benchmark harness (``make bench``): see ``python -m bench --help`` and docs/performance.md."""
