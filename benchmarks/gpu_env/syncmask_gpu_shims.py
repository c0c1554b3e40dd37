"""Import shims that let LAVIS 1.0.2 and this plugin run on a newer Python stack (Python 3.12,
NumPy 2, a recent `tokenizers`), for `benchmarks/gpu_check.py` only; never part of the package.

- `import lavis` imports spacy, decord and pycocoevalcap (captioning, video and VQA code this
  plugin never calls): they are replaced by permissive stub modules, whatever is installed.
- NumPy 2 removed `np.Inf`, which LAVIS's `albef_pretrain` uses: it is put back.
- transformers 4.26 refuses `tokenizers >= 0.14` at import. Its fast BERT tokenizer works with
  tokenizers 0.22 (checked: encoding, padding, truncation, offsets, WordPiece training), and the
  plugin needs the fast one (offset mappings, vocabulary training), so :func:`unpack_wheels`
  drops that upper bound in its unpacked copy of transformers instead of hiding tokenizers.

`sitecustomize.py` beside this file calls :func:`install` in every Python process started with
this folder on PYTHONPATH (torchrun's workers too).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
import zipfile
from pathlib import Path

STUBBED = ("spacy", "decord", "pycocoevalcap")
TOKENIZERS_PIN = '"tokenizers": "tokenizers>=0.11.1,!=0.11.3,<0.14"'


class _AnyType(type):
    """Metaclass: attributes of the stub class itself (`decord.bridge.set_bridge`) resolve too."""

    def __getattr__(cls, name: str) -> type:
        if name.startswith("__"):
            raise AttributeError(name)
        return cls


class _Anything(metaclass=_AnyType):
    """Stands in for any attribute of a stub module: callable, subscriptable, subclassable."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __call__(self, *args: object, **kwargs: object) -> _Anything:
        return _Anything()

    def __getattr__(self, name: str) -> _Anything:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Anything()

    def __getitem__(self, key: object) -> _Anything:
        return _Anything()

    def __iter__(self):  # noqa: ANN204
        return iter(())


class _StubModule(types.ModuleType):
    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Anything


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds every `STUBBED` module and submodule before the real ones are looked for."""

    def find_spec(self, name: str, path: object = None, target: object = None):  # noqa: ANN201
        if name.split(".")[0] not in STUBBED:
            return None
        return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _StubModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        return None


def install() -> None:
    """Stub the unused LAVIS imports and restore `np.Inf`; safe to call twice."""
    if not any(isinstance(finder, _StubFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _StubFinder())
    try:
        import numpy
    except ImportError:
        return
    if "Inf" not in numpy.__dict__:
        numpy.Inf = numpy.inf


def unpack_wheels(wheel_dir: Path, site: Path) -> list[str]:
    """Unzip every `*.whl` of `wheel_dir` into `site` (wheels are zip files laid out as
    site-packages) and relax transformers' tokenizers pin there. Returns the wheel names."""
    wheels = sorted(Path(wheel_dir).glob("*.whl"))
    if not wheels:
        raise FileNotFoundError(f"no *.whl in {wheel_dir} (run benchmarks/gpu_wheels.sh DIR)")
    site.mkdir(parents=True, exist_ok=True)
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)
    table = site / "transformers" / "dependency_versions_table.py"
    if table.exists():
        text = table.read_text()
        table.write_text(text.replace(TOKENIZERS_PIN, '"tokenizers": "tokenizers>=0.11.1"'))
    return [wheel.name for wheel in wheels]
