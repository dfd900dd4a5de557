"""The ``popularity-contest`` command line: the only layer that parses arguments and prints.

``main`` builds the parser; each subcommand's module is imported only when it runs.
"""
