"""Shared fixtures: the shipped CaloChallenge XMLs and small simulated samples (session cached).
No test needs the team's shared data folder: a fresh clone runs the whole suite."""

from __future__ import annotations

import numpy as np
import pytest

from hepfastsim.geometry.binning import DATA_DIR as XML_DIR  # the XMLs shipped in the package


@pytest.fixture(scope="session")
def fullsim_demo():
    from hepfastsim.fullsim import FullSim

    return FullSim(binning="demo")


@pytest.fixture(scope="session")
def demo_samples(fullsim_demo):
    """Two independent full-simulation samples of 5000 electrons, 1-10 GeV log-uniform, demo readout."""
    rng = np.random.default_rng(42)
    e1 = np.exp(rng.uniform(np.log(1000), np.log(10000), 5000))
    e2 = np.exp(rng.uniform(np.log(1000), np.log(10000), 5000))
    a = fullsim_demo.run(e1, "e-", seed=101).dataset()
    b = fullsim_demo.run(e2, "e-", seed=202).dataset()
    return a, b


@pytest.fixture(scope="session")
def tiny(demo_samples):
    """400 training and 100 validation showers of ``demo_samples`` as model inputs, for quick fits."""
    from hepfastsim.tasks import calo_samples

    ref, _ = demo_samples
    return calo_samples(ref.subset(slice(0, 400))), calo_samples(ref.subset(slice(400, 500)))


@pytest.fixture(scope="session")
def samples_10gev(fullsim_demo):
    """Two independent full-simulation samples of 5000 electrons at 10 GeV, demo readout: a 5 % energy scale is
    about one sigma of the sampling resolution there."""
    return (fullsim_demo.run(np.full(5000, 10_000.0), "e-", seed=505).dataset(),
            fullsim_demo.run(np.full(5000, 10_000.0), "e-", seed=606).dataset())


def check_report_html(path) -> int:
    """Assert report.html is well-formed (every non-void tag closed in order) and every embedded image
    decodes as a PNG of reasonable size; returns the number of images."""
    import base64
    import io
    from html.parser import HTMLParser

    from PIL import Image

    void = {"meta", "img", "br", "hr", "link", "input"}

    class P(HTMLParser):
        def __init__(self):
            super().__init__()
            self.stack, self.imgs, self.errors = [], [], []

        def handle_starttag(self, tag, attrs):
            if tag == "img":
                self.imgs.append(dict(attrs))
            elif tag not in void:
                self.stack.append(tag)

        def handle_endtag(self, tag):
            if tag in void:  # "<img ... />" reports an end tag too
                return
            if not self.stack or self.stack.pop() != tag:
                self.errors.append(tag)

    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    p = P()
    p.feed(text)
    assert not p.errors and not p.stack, (p.errors, p.stack)
    for img in p.imgs:
        assert img.get("alt")
        head, data = img["src"].split(",", 1)
        assert head == "data:image/png;base64"
        im = Image.open(io.BytesIO(base64.b64decode(data)))
        im.verify()
        assert im.format == "PNG" and im.size[0] >= 300 and im.size[1] >= 200
    return len(p.imgs)
