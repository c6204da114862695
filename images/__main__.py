"""``python -m images <command>``: see images/README.md."""

import sys

from images.build_args import main

sys.exit(main())
