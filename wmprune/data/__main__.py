"""`python -m wmprune.data NAME [--root data] [--download]`: find (or fetch) a dataset's files and check
that they read. `make data` runs it for Fashion-MNIST where apt cannot install Debian's package."""

import argparse
import sys
from pathlib import Path

from wmprune.data import DATASETS
from wmprune.errors import UserError


def main(argv: list[str] | None = None) -> int:
    """Load dataset `NAME` as a run would; print its size, or one line and exit status 2 if it cannot."""
    parser = argparse.ArgumentParser(prog="python -m wmprune.data", description=__doc__.split("\n")[0])
    parser.add_argument("name", choices=sorted(DATASETS), help="data.name")
    parser.add_argument("--root", type=Path, default=Path("data"), help="data.root (default: data)")
    parser.add_argument("--download", action="store_true", help="fetch missing files from the official source")
    args = parser.parse_args(argv)
    try:
        splits = DATASETS[args.name](args.root, args.download)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{splits.name}: {len(splits.train_labels)} train / {len(splits.test_labels)} test images, "
          f"{splits.channels} channel(s), {splits.num_classes} classes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
