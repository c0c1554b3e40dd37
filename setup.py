"""lavis_syncmask: SyncMask (CVPR 2024) as a plugin for Salesforce LAVIS."""

from setuptools import find_packages, setup

setup(
    name="lavis_syncmask",
    version="0.1.0",
    description="Synchronized attentional masking for fashion vision-language pretraining, on LAVIS",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    # Only the package: the LAVIS wheel already owns a top-level `tests` package.
    packages=find_packages(include=["lavis_syncmask", "lavis_syncmask.*"]),
    include_package_data=True,
    package_data={"lavis_syncmask": ["configs/**/*.yaml", "configs/*.yaml"]},
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
    ],
    extras_require={"dev": ["pytest", "ruff"]},
    entry_points={
        "console_scripts": [
            "syncmask-train=lavis_syncmask.cli.train:main",
            "syncmask-evaluate=lavis_syncmask.cli.evaluate:main",
            "syncmask-synthetic=lavis_syncmask.synthetic.__main__:main",
            "syncmask-vocab=lavis_syncmask.cli.vocab:main",
        ]
    },
)
