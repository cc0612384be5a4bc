"""``python -m lightgen``: the same as the ``lightgen`` command."""

from lightgen.cli import main

if __name__ == "__main__":
    main()
