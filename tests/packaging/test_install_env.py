"""packaging/install_env.py: the right PyTorch build from the right index, replaced when wrong,
and a set-up that is checked before it counts as done."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("install_env", ROOT / "packaging" / "install_env.py")
install_env = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(install_env)


def test_the_pinned_release_comes_from_the_constraints_file(tmp_path):
    assert install_env.pinned_torch() == next(
        line.split("==")[1].strip() for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line.startswith("torch=="))
    other = tmp_path / "c.txt"
    other.write_text("# tested\nnumpy==2.0\ntorch == 2.9.1  # pinned\n")
    assert install_env.pinned_torch(other) == "2.9.1"
    other.write_text("torchvision==0.20\n")
    with pytest.raises(install_env.SetupError, match="torch==VERSION"):
        install_env.pinned_torch(other)


def test_the_cpu_build_comes_from_pytorchs_cpu_index_except_on_macos():
    assert install_env.torch_index("cpu", {}, "linux") == install_env.CPU_INDEX
    assert install_env.torch_index("cpu", {}, "win32") == install_env.CPU_INDEX
    assert install_env.torch_index("cpu", {}, "darwin") == ""
    # Overridable, and an empty value means pip's own configured index (a local mirror).
    assert install_env.torch_index("cpu", {"TORCH_INDEX_URL": "https://mirror/cpu"}, "linux") == "https://mirror/cpu"
    assert install_env.torch_index("cpu", {"TORCH_INDEX_URL": ""}, "linux") == ""
    assert install_env.torch_index("cuda", {}, "win32") == install_env.CUDA_INDEX
    assert install_env.torch_index("cuda", {"TORCH_CUDA_INDEX_URL": "https://x/cu126"}, "linux") == "https://x/cu126"


def test_pip_is_asked_for_the_pinned_release_and_the_build_by_index():
    cpu = install_env.torch_install_command("cpu", "2.13.0", install_env.CPU_INDEX)
    assert "torch==2.13.0" in cpu and "--no-deps" in cpu
    assert cpu[cpu.index("--index-url") + 1] == install_env.CPU_INDEX and "--extra-index-url" not in cpu
    assert "--index-url" not in install_env.torch_install_command("cpu", "2.13.0", "")
    cuda = install_env.torch_install_command("cuda", "2.13.0", install_env.CUDA_INDEX)
    assert "torch==2.13.0" in cuda and "--no-deps" not in cuda  # NVIDIA's library wheels come along
    assert cuda[cuda.index("--extra-index-url") + 1] == install_env.CUDA_INDEX


@pytest.fixture
def fake_venv(tmp_path, monkeypatch):
    """A venv whose torch is what the test says; pip calls are recorded, not run."""
    state = {"torch": None, "calls": []}
    monkeypatch.setattr(install_env, "installed_torch", lambda python: state["torch"])

    def pip(python, *args):
        state["calls"].append(args)
        if args[0] == "uninstall":
            state["torch"] = None
    monkeypatch.setattr(install_env, "_pip", pip)
    (tmp_path / ".installed-run-cpu").touch()
    (tmp_path / ".installed-test-cpu").touch()
    return tmp_path, state


def test_a_matching_torch_is_kept(fake_venv):
    venv, state = fake_venv
    state["torch"] = ("2.13.0+cpu", "", False)
    install_env.ensure_torch(venv / "python", venv, "cpu", "2.13.0")
    assert state["calls"] == [] and (venv / ".installed-run-cpu").exists()


def test_a_cpu_torch_is_replaced_for_cuda_and_the_stamps_are_voided(fake_venv, monkeypatch):
    venv, state = fake_venv
    monkeypatch.delenv("TORCH_CUDA_INDEX_URL", raising=False)
    state["torch"] = ("2.13.0+cpu", "", False)
    install_env.ensure_torch(venv / "python", venv, "cuda", "2.13.0")
    assert state["calls"][0] == ("uninstall", "--yes", "torch")
    assert state["calls"][1][0] == "install" and "torch==2.13.0" in state["calls"][1]
    assert "--extra-index-url" in state["calls"][1]
    assert not list(venv.glob(".installed-*"))


def test_another_release_or_a_cuda_build_is_replaced_on_a_cpu_set_up(fake_venv):
    venv, state = fake_venv
    for have in (("2.14.1+cpu", "", False), ("2.13.0", "13.0", True)):
        state["torch"], state["calls"] = have, []
        install_env.ensure_torch(venv / "python", venv, "cpu", "2.13.0")
        assert [c[0] for c in state["calls"]] == ["uninstall", "install"]
        assert "--no-deps" in state["calls"][1]


@pytest.mark.parametrize("kind, torch, message", [
    ("cpu", ("2.13.0", "13.0", False), "CUDA build of PyTorch"),
    ("cuda", ("2.13.0+cpu", "", False), "TORCH_CUDA_INDEX_URL"),
    ("cuda", ("2.13.0+cu130", "13.0", False), "NVIDIA driver"),
    ("cuda", None, "does not import"),
])
def test_a_set_up_that_cannot_work_is_refused_with_what_to_do(monkeypatch, kind, torch, message):
    monkeypatch.setattr(install_env, "installed_torch", lambda python: torch)
    with pytest.raises(install_env.SetupError, match=message):
        install_env.verify(Path("python"), kind)


def test_a_working_set_up_is_summarised(monkeypatch):
    monkeypatch.setattr(install_env, "installed_torch", lambda python: ("2.13.0+cu130", "13.0", True))
    assert install_env.verify(Path("python"), "cuda") == "PyTorch 2.13.0+cu130 (CUDA 13.0), GPU available"
    monkeypatch.setattr(install_env, "installed_torch", lambda python: ("2.13.0+cpu", "", False))
    assert install_env.verify(Path("python"), "cpu") == "PyTorch 2.13.0+cpu (CPU build)"
    monkeypatch.setattr(install_env, "installed_torch", lambda python: ("2.13.0+cu130", "13.0", False))
    assert "GPU not checked" in install_env.verify(Path("python"), "cuda", gpu_check=False)


def test_the_probe_reads_the_torch_of_a_real_interpreter(tmp_path):
    torch = pytest.importorskip("torch")
    version, cuda, usable = install_env.installed_torch(Path(sys.executable))
    assert version == torch.__version__ and cuda == (torch.version.cuda or "")
    assert usable == (bool(torch.version.cuda) and torch.cuda.is_available())


def test_a_missing_interpreter_has_no_torch(tmp_path):
    assert install_env.installed_torch(tmp_path / "no-such-python") is None


def test_the_package_argument(tmp_path):
    assert install_env.package_spec(None, ["dev", "parquet"]) == ["-e", f"{ROOT}[dev,parquet]"]
    assert install_env.package_spec("dist/x.whl", []) == ["dist/x.whl"]


def test_cuda_on_macos_and_old_python_are_refused_with_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert install_env.main([str(tmp_path / "venv"), "--torch", "cuda"]) == 1
    assert "no CUDA builds for macOS" in capsys.readouterr().err
    assert not (tmp_path / "venv").exists()


@pytest.mark.parametrize("version, requires, cuda", [
    ("2.13.0+cpu", ["filelock", "typing-extensions>=4.10.0"], False),
    ("2.13.0", ["filelock", "sympy>=1.13.3"], False),  # macOS, or a CPU wheel without a label
    ("2.13.0+cu130", ["filelock"], True),
    ("2.13.0", ["filelock", "nvidia-cublas==13.0.0.19; platform_system == 'Linux'"], True),  # PyPI's Linux wheel
])
def test_the_build_is_read_from_the_metadata(version, requires, cuda):
    assert install_env.is_cuda_build(version, requires) is cuda


@pytest.mark.skipif(sys.platform == "win32", reason="the stand-in interpreter is a POSIX shell script")
def test_the_early_check_works_before_torchs_own_dependencies_are_installed(tmp_path):
    # The set-up installs torch alone first (--no-deps) and checks its build at once; torch
    # cannot be imported at that point, so the check must read the package metadata.
    site = tmp_path / "site"
    dist = site / "torch-2.13.0+cpu.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 2.13.0+cpu\n"
                                   "Requires-Dist: typing-extensions-that-is-absent\n", encoding="utf-8")
    (site / "torch").mkdir()
    (site / "torch" / "__init__.py").write_text("import typing_extensions_that_is_absent\n", encoding="utf-8")
    wrapper = tmp_path / "python"
    wrapper.write_text(f"#!/bin/sh\nPYTHONPATH={site} exec {sys.executable} \"$@\"\n", encoding="utf-8")
    wrapper.chmod(0o755)
    assert install_env.installed_torch(wrapper) is None  # torch itself does not import yet
    install_env.check_build(wrapper, "cpu")
    with pytest.raises(install_env.SetupError, match="CPU build of PyTorch"):
        install_env.check_build(wrapper, "cuda")
