"""What runs inside users' processes: standard library only, never raises, never prints.

Importing anything here activates nothing; :mod:`popularity_contest.reporter` is the one
module whose import switches reporting on. ``settings`` reads the environment, ``process``
tells plumbing and IPython programs apart and holds the collector's address, ``classify``
decides which imported names count (``layouts`` holds its slow paths, imported only when
needed), ``lines`` writes statsd lines, ``runtime`` holds the import observer, exit, fork
and IPython hooks. A test checks that these modules import
only the standard library, each other and :mod:`popularity_contest.names`.
"""
