"""`python -m facecluster`, and the `facecluster` command's entry point."""

import sys


def main() -> None:
    """Run the CLI; Ctrl-C while it is still loading (numpy, the models' libraries) exits 130 too."""
    try:
        # Imported here, not at the top, so that a Ctrl-C while it loads is caught.
        from facecluster.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    cli_main()


if __name__ == "__main__":
    main()
