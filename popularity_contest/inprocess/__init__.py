"""What runs inside users' processes: standard library only, never raises, never prints.

Importing anything here activates nothing; :mod:`popularity_contest.reporter` is the one
module whose import switches reporting on. ``settings`` reads the environment, ``classify``
decides which imported names count, ``lines`` writes statsd lines, ``runtime`` holds the
import observer, exit, fork and IPython hooks. A test checks that these modules import
only the standard library, each other and :mod:`popularity_contest.names`.
"""
