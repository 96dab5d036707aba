"""Sub-commands of the ``dataigm`` CLI, one module each (discovered automatically)."""
