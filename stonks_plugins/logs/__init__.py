"""Per-plugin logs: what each plugin's code logs is kept with the plugin, not only in the
host's log mixed with everything else.

- :mod:`.capture` (standard library only: the process-isolation child uses it too) attaches
  a handler to the plugin's loggers when it is loaded and keeps their records in a bounded
  buffer per plugin, in memory;
- :mod:`.store` (Django) flushes those buffers to ``PluginLogRecord`` rows off the request
  path, masked and cut to size, and keeps each plugin's newest ``PLUGINS_LOG_RECORDS``.

Nothing is imported here: the child imports :mod:`.capture` without Django.
"""
