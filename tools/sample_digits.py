"""Write the sample digits that README's ``predict`` example reads: docs/images/digits/D.png.

Usage (from the repository root, with the real MNIST files where digitbench finds them)::

    python tools/sample_digits.py

For each digit D from 0 to 9, the first image of MNIST's test set labelled D, drawn as
a user's picture would be: dark ink on white, enlarged four times (112 x 112 pixels),
so that ``digitbench predict`` frames it as it frames any photo or scan.
"""

from pathlib import Path

import numpy as np

from digitbench import load_mnist
from digitbench.files import write_file

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images" / "digits"
ZOOM = 4


def main():
    from PIL import Image

    data = load_mnist(download=False)
    OUT.mkdir(parents=True, exist_ok=True)
    for digit in range(10):
        k = int(np.flatnonzero(data.test_labels == digit)[0])
        ink = 255 - data.test_images[k].reshape(28, 28)  # dark ink on white
        image = Image.fromarray(np.kron(ink, np.ones((ZOOM, ZOOM), np.uint8)))
        path = write_file(OUT / f"{digit}.png", lambda f: image.save(f, format="PNG", optimize=True))
        print(f"wrote {path} (test image {k})")


if __name__ == "__main__":
    main()
