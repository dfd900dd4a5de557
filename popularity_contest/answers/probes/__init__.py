"""Programs run *by path* with a target environment's interpreter (``python -I FILE``).

They run inside the environment being judged, which may lack everything but the standard
library: each file here imports only the standard library, never ``popularity_contest``
(a rule shared with the reporter is loaded from its own file by path instead), and prints
one JSON document on standard output.
"""
