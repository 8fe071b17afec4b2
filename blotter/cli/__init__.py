"""The entry point: command line, settings, headless commands, the dead man's switch.

``blotter.cli.main:main`` is the console script. Nothing below this layer imports it.
"""
