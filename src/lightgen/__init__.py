"""lightgen: the LightGen all-optical generative chip as software.

Layout follows the light: ``optics`` (physics only) <- ``chip`` <- ``train`` /
``tasks`` <- ``cli``.
"""

__version__ = "0.1.0"
