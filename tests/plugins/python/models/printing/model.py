# Prints from import, initialize, execute and a thread, and logs through
# pb_utils.Logger; OUT echoes IN.
import sys
import threading

import triton_python_backend_utils as pb_utils

print("printed while importing")


class TritonPythonModel:
    def initialize(self, args):
        print("printed in initialize of", args["model_instance_name"])
        sys.stderr.write("written to stderr\n")
        pb_utils.Logger.log_info("logger info")
        pb_utils.Logger.log_warn("logger warning")
        pb_utils.Logger.log_error("logger error")
        pb_utils.Logger.log_verbose("logger verbose")
        pb_utils.Logger.log("logger explicit", pb_utils.Logger.WARNING)

    def execute(self, requests):
        print("executing", len(requests), "request(s)", end="")
        print(" ... done")
        t = threading.Thread(target=lambda: print("printed from a thread"))
        t.start()
        t.join()
        return [pb_utils.InferenceResponse([pb_utils.Tensor("OUT", r.inputs()[0].as_numpy())])
                for r in requests]

    def finalize(self):
        print("finalized")
