"""What the tests/reference/check_*.py scripts share: running headroom's
tools and ending with one summary line and the exit status."""

import subprocess


def run(cmd):
    """Runs cmd; its stdout, or RuntimeError naming the command, its exit status and stderr."""
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), r.returncode, r.stderr.strip()))
    return r.stdout


def finish(failures, what):
    """Prints '<n> <what> failed' or 'all <what> passed'; the exit status (1 on any failure)."""
    if failures:
        print("%d %s failed" % (len(failures), what))
        return 1
    print("all %s passed" % what)
    return 0
