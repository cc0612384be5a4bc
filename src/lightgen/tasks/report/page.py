"""The page's parts: inline PNG images (``data:`` URIs), tables, notes, the style sheet,
and the HTML document around the sections."""

from __future__ import annotations

import base64
import html
import io
import math

import matplotlib

matplotlib.use("Agg")
import imageio.v3 as iio
import matplotlib.pyplot as plt
import numpy as np
import torch

from lightgen.tasks.images import image_grid

SECTIONS = ("design", "training", "results", "inside", "hardware")
"""Section ids of the page, in order (each is an ``<section id=...>``)."""

SECTION_TITLES = {
    "design": "Design",
    "training": "Training",
    "results": "Results",
    "inside": "Inside the chip",
    "hardware": "Hardware model",
}


def figure_uri(fig, dpi: int = 110) -> str:
    """A matplotlib figure as a ``data:image/png;base64,...`` URI (the figure is closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def array_uri(image: np.ndarray) -> str:
    """A uint8 ``(H, W)`` or ``(H, W, 3)`` image as a PNG ``data:`` URI."""
    png = iio.imwrite("<bytes>", image, extension=".png")
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def upscale(size: int) -> int:
    return max(1, 64 // size)


def grid_uri(images: torch.Tensor, ncol: int) -> str:
    return array_uri(image_grid(images.cpu(), ncol, upscale=upscale(images.shape[-1])))


def img(uri: str, alt: str, caption: str = "", pixelated: bool = False) -> str:
    cls = ' class="px"' if pixelated else ""
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure><img src="{uri}" alt="{html.escape(alt)}"{cls}>{cap}</figure>'


def table(rows: list[tuple], header: tuple | None = None) -> str:
    def cell(v) -> str:
        if isinstance(v, float):
            return num(v)
        return html.escape(str(v))

    head = (
        "<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>"
        if header
        else ""
    )
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<div class="tbl"><table>{head}{body}</table></div>'


def num(x: float) -> str:
    from lightgen.hardware.report import fmt

    return "nan" if isinstance(x, float) and math.isnan(x) else fmt(x, 4)


def note(text: str) -> str:
    return f'<p class="missing">{html.escape(text)}</p>'


CSS = """
:root{--fg:#1b1f24;--muted:#57606a;--bg:#fff;--line:#d0d7de;--warn:#9a6700;--warnbg:#fff8c5}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header,main{max-width:1100px;margin:0 auto;padding:0 1rem}
header{padding-top:1rem}
nav{position:sticky;top:0;background:var(--bg);border-bottom:1px solid var(--line);padding:.4rem 1rem;z-index:1;overflow-x:auto;white-space:nowrap}
nav a{margin-right:1rem;color:#0969da;text-decoration:none}
h1{font-size:1.5rem;margin:.3rem 0}
h2{font-size:1.25rem;border-bottom:1px solid var(--line);padding-bottom:.2rem;margin-top:2rem}
h3{font-size:1.05rem;margin-top:1.4rem}
figure{margin:.8rem 0}
img{max-width:100%;height:auto;display:block}
img.px{image-rendering:pixelated}
figcaption{color:var(--muted);font-size:.9rem}
.tbl{overflow-x:auto}
table{border-collapse:collapse;font-size:.92rem;margin:.5rem 0}
td,th{border:1px solid var(--line);padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}
pre{overflow-x:auto;font-size:.8rem;background:#f6f8fa;padding:.6rem}
.missing{background:var(--warnbg);color:var(--warn);padding:.4rem .6rem;border-radius:4px}
@media (max-width:600px){body{font-size:15px}td,th{padding:.2rem .3rem}}
"""


def render_page(title: str, summary: str, sections: dict[str, str]) -> str:
    nav = "".join(f'<a href="#{s}">{SECTION_TITLES[s]}</a>' for s in sections)
    body = "".join(
        f'<section id="{s}"><h2>{SECTION_TITLES[s]}</h2>{content}</section>'
        for s, content in sections.items()
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1>{summary}</header>"
        f"<nav>{nav}</nav><main>{body}</main></body></html>\n"
    )
