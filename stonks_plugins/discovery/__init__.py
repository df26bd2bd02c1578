"""Finding plugins: installed distributions' entry points and plugin directories.

``discover()`` returns one :class:`Candidate` per plugin name — a duplicate is renamed
``NAME@LOCATION`` and marked — each with its manifest or the problem that stops it. Nothing
here imports plugin code or touches the database.
"""

from .candidate import Candidate, Problem, Source
from .catalog import DiscoveryResult, discover
from .directories import scan_directory_plugin

__all__ = ["Candidate", "DiscoveryResult", "Problem", "Source", "discover", "scan_directory_plugin"]
