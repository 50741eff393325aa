"""Runs inside the VM of tests/vm.rs: the doctor and every ground-truth
command of one host, each under the host's argv prefix (setpriv, aa-exec,
a private mount namespace, ...), and writes what they did as JSON."""
import json
import subprocess
import sys

spec = json.load(open(sys.argv[1]))
prefix = spec["prefix"]


def run(argv, timeout):
    try:
        r = subprocess.run(prefix + argv, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=timeout)
        return {"rc": r.returncode,
                "stdout": r.stdout.decode(errors="replace"),
                "stderr": r.stderr.decode(errors="replace")[-2000:]}
    except Exception as e:  # a command that cannot start fails
        return {"rc": -1, "stdout": "", "stderr": str(e)}


out = {"doctor": run([spec["doctor"], "doctor", "--json", "--only", spec["only"]], 600),
       "truth": {name: run(argv, 120) for name, argv in spec["truth"]}}
json.dump(out, open(sys.argv[2], "w"))
