import sys

from seqlstm.cli import main

sys.exit(main())
