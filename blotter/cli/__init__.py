"""The entry point: command line, settings, headless commands, the dead man's switch.

``blotter.cli.entry:main`` is the console script (it loads ``blotter.cli.main``). Nothing below this layer imports it.
"""
