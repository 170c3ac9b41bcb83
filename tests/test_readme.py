"""The README's examples run as written, so that they cannot drift from the code.

The command-line block runs line by line, in order, in an empty folder (with smaller budgets);
the Python API block runs as a script (with a smaller budget); every other ``ssdiff`` line of the
README is parsed by the CLI's own parser, so an option that no longer exists fails here.
"""

import re
import shlex
from pathlib import Path

import pytest

from ssdiff.cli import build_parser, main

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.DOTALL | re.MULTILINE)


def blocks(language: str) -> list[tuple[str, str]]:
    """(heading above, code) of every ``language`` block of the README."""
    text = README.read_text()
    found = []
    for match in BLOCK.finditer(text):
        if match.group(1) == language:
            headings = re.findall(r"^#+ (.*)$", text[: match.start()], re.MULTILINE)
            found.append((headings[-1] if headings else "", match.group(2)))
    return found


def commands(code: str) -> list[list[str]]:
    """The ``ssdiff`` command lines of a shell block, continuations joined, comments dropped."""
    lines = code.replace("\\\n", " ").splitlines()
    return [shlex.split(line, comments=True)[1:] for line in lines if line.startswith("ssdiff ")]


def smaller(argv: list[str]) -> list[str]:
    """The same command with a budget a test can afford."""
    command = argv[0]
    if command in ("restore", "demo"):
        argv = [a for i, a in enumerate(argv) if a != "--nfe" and (i == 0 or argv[i - 1] != "--nfe")] + ["--nfe", "4"]
    if command == "bench":
        argv = [re.sub(r"@\d+", "@4", a) for a in argv]
    if command == "tune":
        argv = [*argv, "--rounds", "1", "--space", '{"t0": [450, 550]}']
    return argv


def test_the_command_line_block_runs_in_order(tmp_path, monkeypatch):
    (_, code), *_ = [block for block in blocks("bash") if block[0] == "Command line"]
    monkeypatch.chdir(tmp_path)
    ran = []
    for argv in commands(code):
        assert main(smaller(argv)) == 0, f"ssdiff {' '.join(argv)}"
        ran.append(argv[0])
    assert ran[0] == "examples" and {"degrade", "restore", "demo", "bench", "tune", "models"} <= set(ran)
    for folder in ("restored", "fast", "unipc", "denoised", "inpainted", "deblurred", "tuned"):
        assert len(list((tmp_path / folder).glob("*.png"))) >= 4, folder
    assert (tmp_path / "bench" / "table.md").exists() and (tmp_path / "my_presets.json").exists()


def test_the_python_api_block_runs(tmp_path, monkeypatch):
    (_, code), = [block for block in blocks("python") if block[0] == "Python API"]
    monkeypatch.chdir(tmp_path)
    exec(compile(code.replace("nfe=30", "nfe=4"), "README.md", "exec"), {})  # noqa: S102 - the README's own example
    assert (tmp_path / "restored.png").exists()


def test_every_other_python_block_compiles():
    for heading, code in blocks("python"):
        compile(code, f"README.md ({heading})", "exec")


@pytest.mark.parametrize("argv", [argv for _, code in blocks("bash") for argv in commands(code) if "..." not in argv],
                         ids=lambda argv: " ".join(argv)[:60])
def test_every_ssdiff_line_of_the_readme_parses(argv):
    build_parser().parse_args(argv)
