"""The one compiled part of SARBench: the ndvi window kernel (harness/scoring/_ndvi_window.c).

Everything else is declared in pyproject.toml. The extension is optional: where no C
compiler is found (or it fails), the install goes on and the harness scores with numpy
alone, to the same bits (``sarbench --version`` says which path is in use).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "harness.scoring._ndvi_window",
            sources=["harness/scoring/_ndvi_window.c"],
            depends=["harness/scoring/_ndvi_window.h"],
            # no fused multiply-add and no fast-math: every sum must round as numpy's does
            extra_compile_args=["-O3", "-ffp-contract=off", "-fno-fast-math", "-Wno-psabi"],
            optional=True,
        )
    ]
)
