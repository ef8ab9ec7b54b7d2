"""Serve the connector: `python server.py [--sandbox] [--host H] [--port N]`.

The same as `zoho-connector serve`; configuration comes from the environment and `.env`.
"""

import sys

from engine.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
