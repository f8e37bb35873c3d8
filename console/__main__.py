"""`python -m console` (or `console`): the console on CONSOLE_PORT (3006); `python -m console
COMMAND` for the same actions as commands (see cli.py)."""

from console.cli import main

if __name__ == "__main__":
    main()
