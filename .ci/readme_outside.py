"""Run the README's quick start, tutorial snippet and sign-off commands as written, from a
folder outside the repository, with the installed nbdiag (CI step, after ``pip install .``).

The blocks run are those marked in README.md by the line right above them:

* ``<!-- outside-repo: run -->``: a ``bash`` block (``bash -e``) or a ``python`` block;
* ``<!-- outside-repo: run exit N -->``: a ``bash`` block whose commands may each exit 0 or N;
* ``<!-- outside-repo: file NAME -->``: a block whose text is written to the file NAME.

They run in document order, all in one temporary folder, with no PYTHONPATH (the code under
test is the installed package, never the checkout). Usage: ``python .ci/readme_outside.py``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = re.compile(r"<!--\s*outside-repo:\s*(?P<what>run|file)\s*(?P<arg>[^>]*?)\s*-->")


def blocks(text: str) -> list[tuple[str, str, str, str]]:
    """(what, argument, language, code) of every marked block, in document order."""
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        match = MARKER.search(line)
        if not match:
            continue
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        fence = re.match(r"^(```+)\s*([\w+-]*)", lines[j]) if j < len(lines) else None
        if fence is None:
            raise SystemExit(f"README.md:{i + 1}: an outside-repo marker must sit right above a code block")
        body = []
        j += 1
        while not lines[j].startswith(fence.group(1)):
            body.append(lines[j])
            j += 1
        out.append((match["what"], match["arg"], fence.group(2).lower(), "\n".join(body) + "\n"))
    return out


def tolerant(code: str, allowed: int) -> str:
    """A bash script running each command line of ``code``, stopping unless it exits 0 or ``allowed``."""
    script = []
    for line in code.splitlines():
        script.append(line)
        if line.strip() and not line.lstrip().startswith("#") and "=" not in line.split()[0]:
            script.append(f"rc=$?; if [ $rc -ne 0 ] && [ $rc -ne {allowed} ]; then exit $rc; fi")
    return "\n".join(script) + "\n"


def main() -> int:
    found = blocks(README.read_text(encoding="utf-8"))
    kinds = {(w, lang) for w, _, lang, _ in found}
    assert ("run", "bash") in kinds and ("run", "python") in kinds and ("file", "json") in kinds, kinds
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["MPLBACKEND"] = "Agg"
    with tempfile.TemporaryDirectory(prefix="nbdiag-readme-") as folder:
        for what, arg, lang, code in found:
            print(f"--- README block ({what} {arg} {lang}) in {folder}:\n{code}", flush=True)
            if what == "file":
                Path(folder, arg).write_text(code, encoding="utf-8")
                continue
            if lang == "python":
                cmd = [sys.executable, "-c", code]
            elif arg.startswith("exit "):
                cmd = ["bash", "-c", tolerant(code, int(arg.split()[1]))]
            else:
                cmd = ["bash", "-e", "-o", "pipefail", "-c", code]
            done = subprocess.run(cmd, cwd=folder, env=env, check=False)
            if done.returncode != 0:
                print(f"ci: README block failed with exit code {done.returncode}", file=sys.stderr)
                return 1
        assert (Path(folder) / "nbdiag-demo" / "group.html").is_file()
    print("ci: the README's quick start, tutorial snippet and sign-off commands ran outside the repository")
    return 0


if __name__ == "__main__":
    sys.exit(main())
