"""The benchmark harness (``make bench``): see ``python -m bench --help`` and the README."""
