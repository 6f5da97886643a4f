"""The Gradio UI (importing this imports gradio; the engine never does).

``build_blocks(service)`` returns the app; ``launch_options()`` gives the ``launch()`` keywords
(theme, css, upload cap) that Gradio 6 no longer takes in ``gr.Blocks``.
"""

from __future__ import annotations

from .layout import build_blocks
from .theme import launch_options

__all__ = ["build_blocks", "launch_options"]
