import sys

from keras_ddpm.cli.main import main

sys.exit(main())
