"""Create or update the virtual environment that `make run` and `make test` use.

Usage::

    python packaging/install_env.py VENV [--torch cpu|cuda] [--extras dev,parquet] [--package SPEC]
                                         [--skip-gpu-check]

It makes VENV when missing, installs the PyTorch release pinned in ``constraints.txt`` in the
build asked for (CPU or CUDA), then installs SPEC (by default this checkout, editable) with
the extras asked for, and checks the result: a CPU set-up must not hold a CUDA build (which
would mean gigabytes of CUDA libraries pulled by mistake), a CUDA set-up must be able to use
the GPU.

Which build of PyTorch pip gets depends on the index it comes from, so the script takes it
from a chosen index, overridable through two environment variables (an empty value means
pip's own configured index, e.g. a local mirror):

``TORCH_INDEX_URL``
    The CPU build. Default: PyTorch's CPU wheel index on Linux and Windows (PyPI's Linux
    wheel is the CUDA build, several GB), nothing on macOS (PyPI's macOS wheel is the CPU/MPS
    build). It is the only index asked for ``torch`` itself (``--index-url``), so an
    unreachable CPU index fails loudly instead of falling back to the CUDA build; pip's own
    ``find-links`` and extra indexes still count, which is how a machine with a local CPU
    wheel installs offline.
``TORCH_CUDA_INDEX_URL``
    The CUDA build, added to the normal index (``--extra-index-url``) because the CUDA wheel
    depends on NVIDIA's library wheels. Default: PyTorch's CUDA 13.0 index. Pick the one that
    matches the installed driver from the table at https://pytorch.org/get-started/locally/.

Exit status: 0 when the environment is ready, 1 when a step failed (one line says which and
what to do).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "constraints.txt"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CUDA_INDEX = "https://download.pytorch.org/whl/cu130"
MIN_PYTHON = (3, 10)

#: Prints "version", "cuda version or empty", "cuda usable" on three lines.
_PROBE = ("import torch; print(torch.__version__); print(torch.version.cuda or ''); "
          "print(torch.cuda.is_available() if torch.version.cuda else False)")


class SetupError(Exception):
    """A step failed; the message says what to do."""


def venv_python(venv: Path) -> Path:
    """The interpreter inside ``venv`` (``Scripts\\python.exe`` on Windows)."""
    if os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def pinned_torch(constraints: Path = CONSTRAINTS) -> str:
    """The version in the ``torch==X`` line of the constraints file."""
    for line in constraints.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"\s*torch\s*==\s*([^\s#;]+)\s*(#.*)?", line)
        if match:
            return match.group(1)
    raise SetupError(f"{constraints.name} has no 'torch==VERSION' line")


def torch_index(kind: str, environ=os.environ, platform: str = sys.platform) -> str:
    """The index URL for PyTorch of ``kind`` ('cpu' or 'cuda'); '' means pip's own index."""
    if kind == "cuda":
        return environ.get("TORCH_CUDA_INDEX_URL", CUDA_INDEX).strip()
    default = "" if platform == "darwin" else CPU_INDEX
    return environ.get("TORCH_INDEX_URL", default).strip()


def torch_install_command(kind: str, version: str, index: str) -> list[str]:
    """pip arguments that install ``torch==version`` of ``kind`` from ``index``."""
    args = ["install", "--retries", "2", f"torch=={version}"]
    if kind == "cpu":
        # Only torch itself from the CPU index; its dependencies come with the package below
        # from the normal index. The CPU index is the only index for torch, so a CUDA wheel
        # from the normal index can never be picked by accident.
        args += ["--no-deps"] + (["--index-url", index] if index else [])
    elif index:
        # The CUDA wheel needs NVIDIA's library wheels, from either index; the index's build
        # carries a local version label (+cu130) and so wins over the normal index's wheel.
        args += ["--extra-index-url", index]
    return args


def installed_torch(python: Path) -> tuple[str, str, bool] | None:
    """(version, CUDA version or '', CUDA usable) of the torch in ``python``, None if absent."""
    try:
        result = subprocess.run([str(python), "-c", _PROBE], capture_output=True, text=True)
    except OSError:  # no interpreter there yet
        return None
    if result.returncode != 0:
        return None
    lines = result.stdout.strip().splitlines()[-3:]
    return lines[0], lines[1], lines[2] == "True"


def same_release(installed: str, pinned: str) -> bool:
    """True when ``installed`` (e.g. 2.13.0+cpu) is the pinned release (2.13.0)."""
    return installed.split("+", 1)[0] == pinned


def _pip(python: Path, *args: str) -> None:
    command = [str(python), "-m", "pip", *args]
    print("+ pip " + " ".join(args), flush=True)
    if subprocess.run(command).returncode != 0:
        raise SetupError(f"'pip {' '.join(args)}' failed (see pip's message above)")


def _clear_stamps(venv: Path) -> None:
    # Stamps written by the Makefile record a finished set-up; a changed torch voids them all.
    for stamp in venv.glob(".installed-*"):
        stamp.unlink()


def ensure_torch(python: Path, venv: Path, kind: str, version: str) -> None:
    """Install torch==version of ``kind``, replacing a different release or build."""
    current = installed_torch(python)
    if current is not None:
        have, cuda, _ = current
        if same_release(have, version) and bool(cuda) == (kind == "cuda"):
            print(f"PyTorch {have} is already installed", flush=True)
            return
        print(f"replacing PyTorch {have} ({'CUDA ' + cuda if cuda else 'CPU'} build) "
              f"by {version} ({kind.upper()} build)", flush=True)
        _clear_stamps(venv)
        _pip(python, "uninstall", "--yes", "torch")
    index = torch_index(kind)
    print(f"installing PyTorch {version}, {kind.upper()} build, from "
          f"{index or 'the default index'}", flush=True)
    _pip(python, *torch_install_command(kind, version, index))


#: Prints the installed torch's version, then its requirements (from the package metadata,
#: so it works before torch's own dependencies are installed and torch can be imported).
_META_PROBE = ("import importlib.metadata as m; print(m.version('torch')); "
               "print('\\n'.join(m.requires('torch') or []))")


def is_cuda_build(version: str, requires: list[str]) -> bool:
    """Whether a torch distribution is a CUDA build, from its metadata alone.

    CUDA wheels carry a ``+cuXXX`` label (PyTorch's index) or depend on NVIDIA's library
    wheels (PyPI's Linux wheel); CPU wheels have neither.
    """
    return "+cu" in version or any(r.strip().lower().startswith("nvidia-") for r in requires)


def check_build(python: Path, kind: str) -> None:
    """Refuse a torch of the wrong build right after installing it, before the long part.

    Reads the package metadata instead of importing torch: torch was installed without its
    dependencies, which come with the rest of the environment.
    """
    result = subprocess.run([str(python), "-c", _META_PROBE], capture_output=True, text=True)
    if result.returncode != 0:
        raise SetupError("PyTorch was not installed in the new environment (see the messages above)")
    version, *requires = result.stdout.strip().splitlines()
    cuda = is_cuda_build(version, requires)
    if kind == "cpu" and cuda:
        raise SetupError(f"a CUDA build of PyTorch ({version}) was installed for a CPU set-up; "
                         "set TORCH_INDEX_URL to an index with the CPU build")
    if kind == "cuda" and not cuda:
        raise SetupError(f"the CPU build of PyTorch ({version}) was installed, not a CUDA build; set "
                         "TORCH_CUDA_INDEX_URL to PyTorch's index for your CUDA version")


def verify(python: Path, kind: str, gpu_check: bool = True) -> str:
    """Check the installed torch suits ``kind``; returns a one-line summary.

    ``gpu_check=False`` accepts a CUDA build on a machine without a GPU (building a CUDA
    installer needs the libraries, not the GPU).
    """
    current = installed_torch(python)
    if current is None:
        raise SetupError("PyTorch does not import in the new environment (see the messages above)")
    version, cuda, usable = current
    if kind == "cpu":
        if cuda:
            raise SetupError(f"a CUDA build of PyTorch ({version}) was installed for a CPU set-up; "
                             "set TORCH_INDEX_URL to an index with the CPU build")
        return f"PyTorch {version} (CPU build)"
    if not cuda:
        raise SetupError(f"the CPU build of PyTorch ({version}) was installed, not a CUDA build; set "
                         "TORCH_CUDA_INDEX_URL to PyTorch's index for your CUDA version")
    if not usable and not gpu_check:
        return f"PyTorch {version} (CUDA {cuda}), GPU not checked"
    if not usable:
        driver = "nvidia-smi is installed" if shutil.which("nvidia-smi") else "nvidia-smi was not found"
        raise SetupError(f"PyTorch {version} (CUDA {cuda}) is installed but cannot use a GPU "
                         f"({driver}): install or update the NVIDIA driver (CUDA {cuda} needs a recent "
                         "one), or use the CPU build (make run without TORCH=cuda)")
    return f"PyTorch {version} (CUDA {cuda}), GPU available"


def package_spec(package: str | None, extras: list[str]) -> list[str]:
    """pip arguments for the package with ``extras`` (default: this checkout, editable)."""
    suffix = f"[{','.join(extras)}]" if extras else ""
    if package is None:
        return ["-e", f"{ROOT}{suffix}"]
    return [f"{package}{suffix}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("venv", type=Path, help="the virtual environment (made when missing)")
    parser.add_argument("--torch", choices=["cpu", "cuda"], default="cpu", help="PyTorch build (default: cpu)")
    parser.add_argument("--extras", default="", help="comma-separated extras, e.g. dev,parquet")
    parser.add_argument("--package", help="what to install instead of this checkout (e.g. a wheel file)")
    parser.add_argument("--skip-gpu-check", action="store_true",
                        help="with --torch cuda: accept a machine without a usable GPU (installer builds)")
    args = parser.parse_args(argv)
    extras = [e.strip() for e in args.extras.split(",") if e.strip()]
    try:
        if sys.version_info < MIN_PYTHON:
            raise SetupError(f"Python {'.'.join(map(str, MIN_PYTHON))} or newer is needed, this is "
                             f"{sys.version.split()[0]}; set PYTHON=/path/to/python3.11 (for make)")
        if args.torch == "cuda" and sys.platform == "darwin":
            raise SetupError("PyTorch has no CUDA builds for macOS; the normal build (make run) "
                             "uses Apple's GPU where there is one")
        python = venv_python(args.venv)
        if not python.exists():
            print(f"creating {args.venv}", flush=True)
            if subprocess.run([sys.executable, "-m", "venv", str(args.venv)]).returncode != 0:
                raise SetupError(f"could not create the virtual environment {args.venv} (on Debian/"
                                 "Ubuntu: sudo apt-get install python3-venv)")
            _pip(python, "install", "--quiet", "--upgrade", "pip")
        version = pinned_torch()
        ensure_torch(python, args.venv, args.torch, version)
        check_build(python, args.torch)  # fail before the long part
        print(f"installing {args.package or 'DPSOM Studio'} and its libraries"
              f"{' with ' + ', '.join(extras) if extras else ''} (minutes the first time)", flush=True)
        _pip(python, "install", "--quiet", "-c", str(CONSTRAINTS), *package_spec(args.package, extras))
        summary = verify(python, args.torch, gpu_check=not args.skip_gpu_check)
    except SetupError as exc:
        print(f"install_env: {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"ready: {args.venv} with {summary}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
