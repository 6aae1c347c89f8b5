"""A stand-in llvmlite put first on the server's path by the robustness tests: importing it
ends the process at once, so a server that imported llvmlite would fail those tests."""

import os

os._exit(86)
