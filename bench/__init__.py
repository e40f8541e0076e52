"""The benchmark harness (``make bench``).

See ``python -m bench --help`` and docs/performance.md.
"""
