"""A multiprocessing pool with fork and with spawn; workers import packages in tasks.

The parent imports numpy (counted once, by the parent); forked workers import bs4 in their
task (a fork child's own import); spawned workers are new interpreters that import this
module again as ``__mp_main__`` (so numpy) and yaml in their task.
"""

import multiprocessing

import numpy as np


def parse(text):
    from bs4 import BeautifulSoup

    return BeautifulSoup(text, "html.parser").get_text()


def load(text):
    import yaml

    return yaml.safe_load(text)["n"] + int(np.int64(1))


if __name__ == "__main__":
    for method, task, inputs, expected in [
        ("fork", parse, ["<b>a</b>", "<i>b</i>", "<p>c</p>"], ["a", "b", "c"]),
        ("spawn", load, ["n: 1", "n: 2", "n: 3"], [2, 3, 4]),
    ]:
        pool = multiprocessing.get_context(method).Pool(2)
        assert pool.map(task, inputs) == expected
        # close + join: workers finish their loop and exit (terminate() would SIGTERM them).
        pool.close()
        pool.join()
    print("pool ok")
