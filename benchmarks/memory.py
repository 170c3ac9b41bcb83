"""Peak memory of real ``ssdiff`` runs against what they announce, and of runs the budget refuses.

Each case runs the command in a fresh process under ``/usr/bin/time -v`` (GNU time) and reads its
"Maximum resident set size". An accepted restoration prints, before each new size of work, "at
most about X GB for this process (estimate)"; the estimate must bound the peak. A refused run
must stay under 1 GB. The images are generated (smooth random colours; a constant image for the
144-megapixel PNG, which compresses to almost nothing, as a hostile file would).

    python benchmarks/memory.py            # writes benchmarks/memory.md
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent


def smooth(path: Path, height: int, width: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC).save(path, quality=90)
    return path


def run(argv: list[str], folder: Path) -> dict:
    result = subprocess.run(["/usr/bin/time", "-v", str(Path(sys.executable).parent / "ssdiff"), *argv], cwd=folder,
                            capture_output=True, text=True, check=False)
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1)) * 1024
    estimates = [float(v) for v in re.findall(r"at most about ([\d.]+) GB", result.stdout)]
    errors = [line for line in result.stderr.splitlines() if line.startswith("ssdiff: error:")]
    return {"code": result.returncode, "peak": peak, "estimate": max(estimates) * 2**30 if estimates else None,
            "error": errors[0] if errors else ""}


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        smooth(folder / "face16.png", 16, 16)
        smooth(folder / "small.png", 128, 128)
        smooth(folder / "photo256.png", 256, 256)
        smooth(folder / "photo512.png", 512, 512)
        smooth(folder / "photo1024.png", 1024, 1024)
        smooth(folder / "photo2048.png", 2048, 2048)
        smooth(folder / "huge.jpg", 5773, 8660)  # 50 megapixels
        Image.new("RGB", (12000, 12000), (128, 128, 128)).save(folder / "huge144.png")
        tiles = ["--frame", "tiles", "--method", "ssd"]
        accepted = [
            ("SR x4 of a 128 px photo (512 x 512 result), 4 calls", ["restore", "small.png", "--task", "sr_bicubic", "--nfe", "4", *tiles]),
            ("deblurring 1024 x 1024, 4 calls", ["restore", "photo1024.png", "--task", "deblur_gauss", "--from-clean", "--nfe", "4", *tiles]),
            ("colorization 2048 x 2048, 3 calls", ["restore", "photo2048.png", "--task", "colorization", "--from-clean", "--nfe", "3", *tiles]),
            ("SR x4 of 8 photos 256 x 256 in one batch, 4 calls", ["restore", "batch", "--task", "sr_bicubic", "--from-clean", "--nfe", "4", *tiles]),
            ("DPS deblurring 256 x 256 (gradients), 4 calls", ["restore", "photo256.png", "--task", "deblur_gauss", "--from-clean", "--nfe", "4", "--frame", "tiles", "--method", "dps"]),
            ("PiGDM SR x4 256 x 256 (gradients), 4 calls", ["restore", "photo256.png", "--task", "sr_bicubic", "--from-clean", "--nfe", "4", "--frame", "tiles", "--method", "pigdm"]),
            ("RED-diff inpainting 512 x 512, 4 calls", ["restore", "photo512.png", "--task", "inpaint", "--from-clean", "--nfe", "4", "--frame", "tiles", "--method", "red-diff"]),
            ("ssd-fast deblur_kernel 1024 x 1024 (FFT), 4 calls", ["restore", "photo1024.png", "--task", "deblur_kernel", "--kernel", "motion:9,30", "--from-clean", "--nfe", "4", "--frame", "tiles", "--method", "ssd-fast"]),
        ]
        refused = [
            ("SR x1000 of a 16 px face", ["restore", "face16.png", "--task", "sr_bicubic", "--scale", "1000", "--nfe", "4"]),
            ("SR x4 of a 50-megapixel JPEG", ["restore", "huge.jpg", "--task", "sr_bicubic", "--scale", "4", "--nfe", "4"]),
            ("degrade a 144-megapixel PNG", ["degrade", "huge144.png", "--task", "sr_bicubic"]),
        ]
        (folder / "batch").mkdir()
        for i in range(8):
            smooth(folder / "batch" / f"{i}.png", 256, 256, seed=i)
        for index, (name, argv) in enumerate(accepted + refused):
            result = run([*argv, "--out", f"out{index}"], folder)
            rows.append((name, " ".join(["ssdiff", *argv]), result, (name, argv) in refused))
            print(name, result, flush=True)
    lines = ["# Peak memory: announced estimates and refusals", "",
             ("`python benchmarks/memory.py` on the 2-core CPU machine (built-in `celeba64` prior, float32); "
              "peak = GNU time's maximum resident set size of the whole process (Python, torch, the model)."), "",
             "| run | exit | estimate announced | peak | peak / estimate |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, _, result, is_refused in rows:
        estimate = f"{result['estimate'] / 2**30:.2f} GB" if result["estimate"] else "refused" if is_refused else "none"
        ratio = f"{result['peak'] / result['estimate']:.2f}" if result["estimate"] else ""
        lines.append(f"| {name} | {result['code']} | {estimate} | {result['peak'] / 2**30:.2f} GB | {ratio} |")
    lines += ["", "The refusals' messages:", ""]
    lines += [f"- `{command}`: {result['error']}" for _, command, result, is_refused in rows if is_refused]
    (HERE / "memory.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
