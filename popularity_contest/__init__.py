"""popularity-contest: which installed packages do the users of a shared Python installation import?"""

__version__ = "0.5.0.dev0"
