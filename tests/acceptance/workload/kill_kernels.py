"""Start real kernels, run a cell that imports something, then SIGKILL each kernel.

Kernel A's last cell imports a package (tqdm), kernel B's a single-file module (six) after a
package (numpy). Prints one line per kernel: ``killed <pid> <imports>``. Exit 1 if a cell
fails or a kernel does not die of SIGKILL.
"""

import os
import signal
import sys

from jupyter_client.manager import KernelManager

CASES = {"package": ["import tqdm"], "single-file": ["import numpy", "import six"]}
problems = []
for label, cells in CASES.items():
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel()
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        for code in cells:
            reply = client.execute_interactive(code, timeout=120)
            if reply["content"]["status"] != "ok":
                problems.append(f"{label}: {code!r} -> {reply['content']}")
        process = manager.provisioner.process
        pid = process.pid
        os.kill(pid, signal.SIGKILL)
        code = process.wait(timeout=30)
        if code != -signal.SIGKILL:
            problems.append(f"{label}: kernel {pid} exited with {code}, not SIGKILL")
        print(f"killed {pid} {label}", flush=True)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
        manager.cleanup_resources()
if problems:
    sys.exit("\n".join(problems))
