"""A plain script: numpy and the standard library."""

import json

import numpy as np

values = np.arange(10) ** 2
print(json.dumps({"sum": int(values.sum())}))
assert values.sum() == 285
