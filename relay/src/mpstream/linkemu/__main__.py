import sys

from mpstream.linkemu.runner import main

sys.exit(main())
