import sys

from clinrag.cli import main

sys.exit(main())
