"""ganbench's built-in variants, installed as ``ganbench_plugins``.

Each module is a plugin registered through the ``ganbench`` entry-point group, exactly as a
third-party plugin would be.
"""
