"""popularity-contest: which installed packages do users of a shared Python import?"""

__version__ = "0.5.0.dev0"
