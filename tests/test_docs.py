"""Docs that run: every code block in README.md and docs/*.md marked python or shell/bash/console.

Each block runs in a fresh folder holding a copy of the demo (``nbdiag/demo/data``,
``nbdiag/demo/nbdiag.toml``, ``nbdiag/demo/model-nback_smdl.json``), so paths in the docs are
written as from the repository root. Python blocks run with ``python -c``, shell blocks with
``bash -e``; ``console`` blocks run their ``$ `` lines. A block that is not meant to run is
marked ``text``; a block that cannot run here carries the line
``<!-- docs-test: skip REASON -->`` right above it (kept rare; the reason is required).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
KINDS = {"python": "python", "py": "python", "pycon": "python", "bash": "shell", "sh": "shell", "shell": "shell",
         "console": "console", "shell-session": "console"}
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\s+(?P<reason>\S.*?)\s*-->")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)")
MAX_SKIPS = 3
#: Blocks run by ``.ci/readme_outside.py`` (after ``pip install .``, outside the checkout); shell ones
#: (the demo, the sign-off, which exits 3) are left to it, python ones run here as well.
OUTSIDE = re.compile(r"<!--\s*outside-repo:")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    kind: str
    code: str
    skip: str | None

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def collect(path: Path) -> list[Block]:
    """Code blocks of one Markdown file whose language is in ``KINDS``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, lang, start = match["fence"], match["lang"].lower(), i
        body = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][len(match["indent"]):] if lines[i].startswith(match["indent"]) else lines[i])
            i += 1
        i += 1
        if lang in KINDS:
            prev = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
            skip = SKIP.search(prev)
            reason = skip["reason"] if skip else None
            if OUTSIDE.search(prev) and KINDS[lang] != "python":
                reason = "run outside the repository after installation by .ci/readme_outside.py"
            out.append(Block(path, start + 1, KINDS[lang], "\n".join(body) + "\n", reason))
    return out


BLOCKS = [b for p in DOC_FILES for b in collect(p)]


def test_docs_have_runnable_blocks_and_few_skips():
    assert any(b.kind == "python" for b in BLOCKS) and any(b.kind == "shell" for b in BLOCKS)
    skipped = [b.id for b in BLOCKS if b.skip and ".ci/readme_outside.py" not in b.skip]
    assert len(skipped) <= MAX_SKIPS, f"too many skipped doc blocks: {skipped}"


def test_collector_reads_fences_and_markers(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text("text\n\n<!-- docs-test: skip needs a cluster -->\n```bash\nsbatch x\n```\n\n"
                   "```python\nprint(1)\n```\n\n```text\nnot run\n```\n\n```toml\na = 1\n```\n", encoding="utf-8")
    blocks = collect(doc)
    assert [(b.kind, b.skip, b.code) for b in blocks] == [("shell", "needs a cluster", "sbatch x\n"),
                                                          ("python", None, "print(1)\n")]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    demo = ROOT / "nbdiag" / "demo"
    target = tmp_path / "nbdiag" / "demo"
    shutil.copytree(demo / "data", target / "data")
    for name in ("nbdiag.toml", "model-nback_smdl.json"):
        if (demo / name).exists():
            shutil.copy2(demo / name, target / name)
    return tmp_path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["MPLBACKEND"] = "Agg"
    return env


@pytest.mark.slow
@pytest.mark.timeout(1200)  # a block may run `nbdiag demo` (its own subprocess timeout is 900 s)
@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_doc_block_runs(block: Block, workdir: Path):
    if block.skip:
        pytest.skip(f"{block.id}: {block.skip}")
    if block.kind == "python":
        cmd = [sys.executable, "-c", block.code]
    else:
        code = block.code
        if block.kind == "console":
            code = "\n".join(ln[2:] for ln in code.splitlines() if ln.startswith("$ ")) + "\n"
        cmd = ["bash", "-e", "-o", "pipefail", "-c", code]
    proc = subprocess.run(cmd, cwd=workdir, env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (f"{block.id} ({block.kind}) failed with exit code {proc.returncode}\n"
                                  f"--- code ---\n{block.code}--- stdout ---\n{proc.stdout[-3000:]}\n"
                                  f"--- stderr ---\n{proc.stderr[-3000:]}")
