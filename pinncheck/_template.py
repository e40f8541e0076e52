"""Imported only by the template process of :mod:`pinncheck._workers` (multiprocessing's fork
server), first of its preloaded modules: the template dies when pinncheck does.

Importing this module anywhere else would tie that process's life to its parent's; nothing in
pinncheck imports it.
"""

from __future__ import annotations

import os

from ._workers import die_with_parent

die_with_parent(os.getppid())
