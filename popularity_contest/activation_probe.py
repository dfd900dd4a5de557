"""Run by ``popularity-contest install|uninstall --prefix`` with the target's interpreter, by path.

It prints one JSON object: ``prefix`` (``sys.prefix``), ``purelib`` (where the ``.pth``
goes), ``ipython`` and ``popularity_contest`` (whether each can be imported there).
Standard library only; run with ``-I`` (no user site, no environment variables, our own
``.pth`` inactive), so it never reports.
"""

import importlib.util
import json
import sys
import sysconfig

print(
    json.dumps(
        {
            "prefix": sys.prefix,
            "purelib": sysconfig.get_path("purelib"),
            "ipython": importlib.util.find_spec("IPython") is not None,
            "popularity_contest": importlib.util.find_spec("popularity_contest") is not None,
        }
    )
)
