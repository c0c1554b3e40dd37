"""lavis_syncmask: SyncMask (CVPR 2024) as a plugin for Salesforce LAVIS."""

import os

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

#: Imported at interpreter start; makes `python -m lavis.train` / `lavis.evaluate` work.
HOOK_PTH = "lavis_syncmask_hook.pth"


class BuildPyWithHook(build_py):
    """Also put `lavis_syncmask_hook.pth` at the root of site-packages, for a wheel AND a
    PEP 660 editable install. A wheel installs `build_lib` into site-packages; an editable
    build links the packages instead, and writes what lands in the `install` command's
    `install_lib` (the unpacked editable wheel) straight into site-packages."""

    def run(self) -> None:
        super().run()
        root = self.build_lib
        if getattr(self, "editable_mode", False):
            root = self.get_finalized_command("install").install_lib
        self.copy_file(HOOK_PTH, os.path.join(root, HOOK_PTH), preserve_mode=False)


setup(
    name="lavis_syncmask",
    version="0.1.0",
    description="Synchronized attentional masking for fashion vision-language pretraining, on LAVIS",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    # Only the package: the LAVIS wheel already owns a top-level `tests` package.
    packages=find_packages(include=["lavis_syncmask", "lavis_syncmask.*"]),
    # The tiny module the .pth imports: standard library only, so startup stays fast.
    py_modules=["lavis_syncmask_hook"],
    cmdclass={"build_py": BuildPyWithHook},
    include_package_data=True,
    package_data={
        "lavis_syncmask": [
            "configs/**/*.yaml",
            "configs/*.yaml",
            "assets/tiny_vocab/vocab.txt",
            "search/web/*",
        ]
    },
    install_requires=[
        "salesforce-lavis==1.0.2",
        "torch",
        "torchvision",
        "h5py",
        "scikit-learn",
        "tqdm",
        "matplotlib",
        "omegaconf",
        "numpy<2",
        "pandas<2.3",
        "starlette",
        "uvicorn",
        "faiss-cpu",
    ],
    extras_require={"dev": ["pytest", "ruff", "httpx", "websockets"]},
    entry_points={
        "console_scripts": [
            "syncmask-train=lavis_syncmask.cli.train:main",
            "syncmask-evaluate=lavis_syncmask.cli.evaluate:main",
            "syncmask-synthetic=lavis_syncmask.cli.synthetic:main",
            "syncmask-vocab=lavis_syncmask.cli.vocab:main",
        ]
    },
)
