"""Train the fast-style networks that the package ships (notebook 07), reproducibly from a seed.

    python tools/train_fast_networks.py                        # the shipped four-painting network
    python tools/train_fast_networks.py --styles starry_night --batch 1 -o starry_night_single.pt

Runs on one CPU thread, checkpoints every 25 steps to the output file and resumes from it when run again
(so the training can span several sittings), and writes a preview of the held-out photos (chelsea and
coffee, at 512 px) every --preview-every steps into --previews.  The shipped file is written with
--ship, which drops the training state (optimiser, history) to keep it small, and prints the SHA-256
entry to put in ``nst_helpers/fast/shipped.py``:

    python tools/train_fast_networks.py -o fast_paintings.ckpt.pt --ship nst_helpers/data/networks/paintings.pt

The two single-painting networks of notebook 07's figure (instance norm against batch norm, batch 4):

    python tools/train_fast_networks.py --styles starry_night --steps 600 --norm instance -o sn_instance.ckpt.pt
    python tools/train_fast_networks.py --styles starry_night --steps 600 --norm batch -o sn_batch.ckpt.pt
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nst_helpers.fast.data import HELD_OUT  # noqa: E402
from nst_helpers.fast.training import TrainSettings, train  # noqa: E402

PAINTINGS = ["starry_night", "great_wave", "composition_vii", "water_lilies"]
# The recipe is TrainSettings' defaults (their comments say why these layers and sizes); the shipped run
# adds its length and seed.
_RECIPE = ("batch", "crop", "scale", "style_size", "width", "blocks", "norm", "style_weight", "content_weight",
           "tv_weight", "learning_rate", "content_layers", "style_layers")
SHIPPED = {"steps": 1800, **{key: getattr(TrainSettings(), key) for key in _RECIPE}, "seed": 20}


def preview_writer(folder: Path, size: int = 512):
    from nst_helpers import examples
    from nst_helpers.images import save_image

    photos = [examples.load(name, size=size) for name in HELD_OUT]

    def write(step, net, history):
        rows = []
        for k in range(net.n_styles):
            outs = [net(p, k) for p in photos]
            height = min(o.shape[-2] for o in outs)
            rows.append(torch.cat([o[..., :height, :] for o in outs], dim=-1))
        width = min(r.shape[-1] for r in rows)
        grid = torch.cat([r[..., :width] for r in rows], dim=-2)
        folder.mkdir(parents=True, exist_ok=True)
        save_image(grid, folder / f"step{step:05d}.png")
        recent = history[-25:]
        mean = {k: sum(h[k] for h in recent) / len(recent) for k in ("total", "content", "style", "tv")}
        print(f"step {step}: " + json.dumps({k: round(v, 4) for k, v in mean.items()}) +
              f", {sum(h['seconds'] for h in recent) / len(recent):.2f} s/step", flush=True)

    return write


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--styles", nargs="+", default=PAINTINGS)
    parser.add_argument("-o", "--output", default="fast_paintings.ckpt.pt")
    parser.add_argument("--previews", default="fast_previews")
    parser.add_argument("--preview-every", type=int, default=50)
    parser.add_argument("--ship", help="write the best network, without training state, to this file and stop")
    parser.add_argument("--half", action="store_true",
                        help="with --ship: store the weights as float16 (half the file; they load back into float32)")
    parser.add_argument("--threads", type=int, default=1)
    for key, value in SHIPPED.items():
        if isinstance(value, tuple):
            item = type(value[0])
            kind = lambda s, item=item: tuple(item(v) for v in s.split(","))  # noqa: E731
        else:
            kind = type(value)
        parser.add_argument("--" + key.replace("_", "-"), type=kind, default=value)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.ship:
        from nst_helpers.fast.shipped import _sha256
        from nst_helpers.fast.store import network_from_file, save_network

        net = network_from_file(args.output)
        state = {k: v.half() if args.half and v.is_floating_point() else v for k, v in net.state_dict().items()}
        save_network(net, args.ship, info=net.info, state=state)
        digest = _sha256(Path(args.ship))
        print(f"wrote {args.ship} ({Path(args.ship).stat().st_size / 1e6:.2f} MB), checkpoint of step "
              f"{net.info.get('step')}; its entry for SHIPPED in nst_helpers/fast/shipped.py:")
        print(f'    "{Path(args.ship).name}": ("{digest}", {tuple(net.names)!r}),')
        return 0
    settings = {key: getattr(args, key) for key in SHIPPED}
    started = time.time()
    result = train(args.styles, checkpoint=args.output, callback=preview_writer(Path(args.previews)),
                   callback_every=args.preview_every, progress=sys.stderr.isatty(), **settings)
    print(f"done: {len(result.history)} steps, best mean loss {result.best_loss:.4f}, "
          f"{time.time() - started:.0f} s this sitting, interrupted={result.interrupted}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
