"""A plain script importing inside a function called later, and a package's submodule."""

import csv
import io


def describe(text):
    import pandas as pd
    from scipy import stats

    frame = pd.read_csv(io.StringIO(text))
    return frame["x"].mean(), stats.sem(frame["x"])


buffer = io.StringIO()
csv.writer(buffer).writerows([["x"], [1], [2], [3]])
mean, _ = describe(buffer.getvalue())
assert mean == 2.0
print("mean", mean)
