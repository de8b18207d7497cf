"""Sphinx configuration of emkit's documentation (``make docs``).

The API reference is built from the docstrings (numpydoc format, autosummary pages in
``_generated/api``); the user guide's code lives in ``snippets/`` and is run by
``make_figures.py`` before Sphinx, which writes its printed output and its pictures to
``_generated/``. Warnings are errors (``sphinx-build -W``).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))  # the working tree, also without an install
os.environ.setdefault("MPLBACKEND", "Agg")

import emkit  # noqa: E402

project = "emkit"
author = "the emkit developers"
copyright = "2026, the emkit developers"
release = emkit.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "snippets", "Thumbs.db", ".DS_Store"]

# --------------------------------------------------------------------------- API reference
# the pages of the API reference are written afresh by every build (none is left over from a
# name that no longer exists)
shutil.rmtree(HERE / "_generated" / "api", ignore_errors=True)
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"          # numpydoc's Parameters sections say the types
autodoc_preserve_defaults = False
numpydoc_show_class_members = False  # the class template lists the members itself
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True

# --------------------------------------------------------------------------- pages
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3

html_theme = "pydata_sphinx_theme"
html_title = f"emkit {release}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
}
html_show_sourcelink = False


# --------------------------------------------------------------------------- completeness
def _check_public_api(app, env):
    """Warn (an error under -W) for every name of ``emkit.__all__`` the reference does not
    document, so a new public name cannot be forgotten."""
    from sphinx.util import logging

    domain = env.get_domain("py")
    documented = set(domain.objects) | set(domain.modules)
    logger = logging.getLogger(__name__)
    for name in emkit.__all__:
        obj = getattr(emkit, name)
        candidates = {f"emkit.{name}", getattr(obj, "__name__", ""),
                      f"{getattr(emkit, '_LAZY', {}).get(name)}.{name}"}  # where the package imports it from
        module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
        if module and qualname:
            candidates.add(f"{module}.{qualname}")
        if not candidates & documented:
            logger.warning(f"emkit.{name} is public (emkit.__all__) but not in the API reference (docs/api/)")


def setup(app):
    app.connect("env-check-consistency", _check_public_api)
