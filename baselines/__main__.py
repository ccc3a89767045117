"""``python -m baselines train|predict``: the entrypoint of the baseline image.

The model comes from the run's ``options["model"]``; each model module has
``train(config, paths)`` and ``predict(config, paths)``.
"""

from __future__ import annotations

import importlib
import sys

from baselines.contract import ContractError, Paths, RunConfig, log, seed_everything

MODELS = {
    "threshold": "baselines.threshold",
    "unet": "baselines.unet",
    "prithvi": "baselines.prithvi",
    "pix2pix": "baselines.pix2pix",
}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("train", "predict"):
        print("usage: python -m baselines train|predict", file=sys.stderr)
        return 2
    phase = argv[0]
    paths = Paths.from_env()
    try:
        config = RunConfig.load(paths.config)
        name = config.options.get("model")
        if name not in MODELS:
            raise ContractError(f"options.model must be one of {', '.join(MODELS)}, got {name!r}")
        module = importlib.import_module(MODELS[name])
        log(f"{phase}: {config.entry}/{config.variant} seed {config.seed} on {config.dataset}")
        seed_everything(config.seed)
        getattr(module, phase)(config, paths)
    except ContractError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
