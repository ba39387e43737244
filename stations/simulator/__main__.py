"""python -m stations.simulator --url ws://127.0.0.1:8000/ocpp --prefix LOAD- --count 500 --password …"""

import sys

from .fleet import main

if __name__ == "__main__":
    sys.exit(main())
