"""Per-class generation accuracy of trained emoji chips under two judges, with controls.

The target of issue 4 (accuracy on generated images >= 0.8 x accuracy on held-out real
images) is measured by a SmallCNN trained on real images. This prints, for each
checkpoint, the same per-class score (:func:`lightgen.tasks.evaluate.class_conditional_scores`,
the same samples: same seeds) under

* ``plain``: the judge trained on clean real images (what ``lightgen eval`` uses), and
* ``chip``: the judge trained with speckle, blur and gain on half its real training
  images (``augment="chip"``, :func:`lightgen.metrics.classifier.chip_artifacts`),

and beside each class two controls on held-out images whose 4 x 4 tiles were shuffled
(shape destroyed, colours kept): ``shuffled``, the judge's accuracy on that class's own
shuffled images (what colour and texture alone earn), and ``null``, how often it names
the class for any shuffled image (its default for shape-less input). A class scored
near these is named for colour or texture, not for shape. Each line prints per class
``generated/real/shuffled/null`` accuracy in %.
``--temperature`` scales the prior's standard deviation (1 = P(Z); several values run
in one pass over each checkpoint). Run from the
repository root (needs ``../shared/data``, or ``--data-root``)::

    python benchmarks/judges.py runs/results/emoji-black-emoji-512-chip-mixture \
        runs/cond/emoji-64-cond-a5-b100 --n-per-class 32
"""

from __future__ import annotations

import argparse
import time

from lightgen.data.registry import load_dataset
from lightgen.metrics.classifier import load_or_train_classifier
from lightgen.tasks.evaluate import class_conditional_scores, classifier_epochs
from lightgen.train.trainer import load_trained

CLASSIFIER_SIZE = 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help="run folders (emoji, labelled)")
    parser.add_argument("--n-per-class", type=int, default=32)
    parser.add_argument(
        "--temperature", type=float, nargs="+", default=[1.0], help="one or more, e.g. 1 0.5"
    )
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--grid-dir", default=None, help="write each run's per-class grid here")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    judges: dict[tuple[str, str], tuple] = {}
    for ck in args.checkpoints:
        t0 = time.perf_counter()
        system, cfg = load_trained(ck)
        size = cfg.chip_config().image_size

        def load(split: str, s: int, name: str = cfg.dataset):
            return load_dataset(name, root=args.data_root, split=split, size=s, seed=args.seed)

        train, test = load("train", size), load("test", size)
        for temperature, augment in [(t, a) for t in args.temperature for a in ("none", "chip")]:
            key = (cfg.dataset, augment)
            if key not in judges:
                clf_train = load("train", CLASSIFIER_SIZE)
                judges[key] = load_or_train_classifier(
                    cfg.dataset,
                    clf_train,
                    epochs=classifier_epochs(len(clf_train)),
                    progress=False,
                    augment=augment,
                )
            clf, _ = judges[key]
            grid = None
            if args.grid_dir is not None and augment == "none":
                grid = f"{args.grid_dir}/{ck.rstrip('/').split('/')[-1]}-T{temperature}.png"
            cc = class_conditional_scores(
                system,
                cfg,
                train,
                test,
                clf,
                args.n_per_class,
                args.seed,
                grid,
                temperature=temperature,
            )
            per_class = " ".join(
                f"{c['class']}={100 * c['accuracy_generated']:.0f}/"
                f"{100 * c['accuracy_real_test']:.0f}/"
                f"{100 * c['accuracy_real_test_block_shuffled']:.0f}/"
                f"{100 * c['null_rate_block_shuffled']:.0f}"
                for c in cc["classes"]
            )
            print(
                f"{ck} judge={augment} T={temperature:g} size={size} "
                f"ratio={cc['ratio_generated_to_real']:.2f} "
                f"gen={100 * cc['accuracy_generated_mean']:.1f} "
                f"real={100 * cc['accuracy_real_test_mean']:.1f} "
                f"class=gen/real/shuffled/null%: {per_class}",
                flush=True,
            )
        print(f"# {ck}: {time.perf_counter() - t0:.0f} s", flush=True)
        del system


if __name__ == "__main__":
    main()
