# Says which Python environment runs it: OUT = "<sys.prefix>|<numpy version>|
# <torii_env_probe.WHERE or 'absent'>" (torii_env_probe exists only in the
# test's venv).
import sys

import numpy as np
import triton_python_backend_utils as pb_utils

try:
    import torii_env_probe
    PROBE = torii_env_probe.WHERE
except ImportError:
    PROBE = "absent"


class TritonPythonModel:
    def execute(self, requests):
        text = "%s|%s|%s" % (sys.prefix, np.__version__, PROBE)
        return [pb_utils.InferenceResponse([pb_utils.Tensor("OUT", np.array([text.encode()],
                                                                           dtype=np.object_))])
                for _ in requests]
