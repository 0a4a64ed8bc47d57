from ganbench.cli import entry_point

entry_point()
