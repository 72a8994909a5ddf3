"""lowbackground: human-written text out of Common Crawl, with provenance and the proof it matters."""

from setuptools import find_packages, setup

VERSION = "0.1.0"

setup(
    name="lowbackground",
    version=VERSION,
    description="Curate human-written web text from Common Crawl: provenance, dedup, AI-text detection, "
                "model-collapse tests.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.13",
    packages=find_packages(include=["pipeline", "pipeline.*", "detectors", "detectors.*",
                                    "schemas", "schemas.*", "collapse", "collapse.*"]),
    package_data={
        "pipeline": ["data/*"],
        "detectors": ["data/*"],
        "schemas": ["*.json"],
    },
    include_package_data=True,
    install_requires=[
        # Beam's [torch]/[transformers] extras conflict with each other: plain Beam only.
        "apache-beam>=2.77,<2.78",
        "warcio>=1.8,<1.9",
        "resiliparse>=2.0,<3",
        "pyarrow>=25,<26",
        "numpy>=2.4,<2.5",
        "datasketch>=2.0,<3",
        # The plain `fasttext` wheels break predict() under numpy 2.
        "fasttext-numpy2>=0.10,<0.11",
        # A range that the CPU build 2.13.0 satisfies; `make` installs torch==2.13.0 first.
        "torch>=2.13,<2.14",
        "transformers>=5,<6",
        "tokenizers>=0.22,<1",
        "safetensors>=0.6,<1",
        "matplotlib>=3.9,<4",
        "tqdm>=4.66,<5",
        "pyyaml>=6,<7",
    ],
    extras_require={
        "gcp": ["apache-beam[gcp]>=2.77,<2.78"],
        "aws": ["apache-beam[aws]>=2.77,<2.78"],
        "dev": ["pytest>=8,<10", "pytest-timeout>=2.3,<3", "ruff>=0.6", "mypy==1.20.2",
                # transformers.Trainer (the baseline of bench/collapse.py) needs accelerate
                "accelerate>=1.1,<2"],
    },
    entry_points={"console_scripts": ["lowbg=pipeline.cli:main"]},
    classifiers=["Programming Language :: Python :: 3.11", "License :: OSI Approved :: Apache Software License"],
)
