import sys

from mpstream.paths.linkemu.runner import main

sys.exit(main())
