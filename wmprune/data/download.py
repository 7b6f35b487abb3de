"""Fetching official dataset files with an md5 check, through torchvision's download utilities."""

from pathlib import Path

from wmprune.errors import UserError


def fetch(dataset: str, url: str, folder: Path, md5: str, *, extract: bool, otherwise: str) -> None:
    """Download `url` into `folder` and check its md5; with `extract`, also unpack the archive there.

    A file already in `folder` with the right md5 is not fetched again. Any failure (network, bad md5)
    becomes one `UserError` naming the dataset and the url, ending with `otherwise`: how to get the files
    by hand.
    """
    # Imported here: torchvision is slow to import and only fetching needs it.
    from torchvision.datasets import utils

    try:
        if extract:
            utils.download_and_extract_archive(url, download_root=str(folder), md5=md5)
        else:
            utils.download_url(url, root=str(folder), md5=md5)
    except (OSError, RuntimeError) as e:  # URLError is an OSError; a bad md5 is a RuntimeError
        raise UserError(f"{dataset}: downloading {url} failed ({e!r}); check the network, or {otherwise}") from e
