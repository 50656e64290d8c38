import sys

from mpstream.cli import main

sys.exit(main())
