"""Execute notebooks through a real kernel each, as a user's job would (nbclient).

Usage: python run_notebooks.py OUT_DIR NOTEBOOK... ; writes each executed notebook to OUT_DIR.
Exit 1 naming the notebook and the error if a cell fails.
"""

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
failed = []
for name in sys.argv[2:]:
    path = Path(name)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, kernel_name="python3", timeout=180, resources={"metadata": {"path": str(out)}}
    )
    try:
        client.execute()
    except CellExecutionError as error:
        failed.append(f"{path.name}: {str(error)[-2000:]}")
    nbformat.write(notebook, out / path.name)
    print(f"executed {path.name}", flush=True)
if failed:
    sys.exit("\n".join(failed))
