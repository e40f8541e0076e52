__version__ = "0.1.0"

SCHEMA_VERSION = 1
"""Version of the JSON documents' layout (``schema_version`` in every document). It grows
when a field is renamed, removed or changes meaning; new fields do not change it."""
