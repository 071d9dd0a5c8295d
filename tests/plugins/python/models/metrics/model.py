# A model that defines one metric of each kind (Triton's pb_utils.MetricFamily
# API) and updates them from its inputs, so tests can compute the expected
# values themselves:
#   test_requests_total{model,kind="ok"}   counter: +1 per request
#   test_rows_in_flight{model}             gauge: set to the last request's rows
#   test_observed_values{model}            histogram: observes each X value
# X is FP32 [-1]; Y echoes X. A request whose first X is negative asks the
# model to try the error paths and return what they raised, one per line, in
# ERRORS (BYTES [-1]).
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        name = args["model_name"]
        self.requests = pb_utils.MetricFamily(
            name="test_requests_total", description="Requests the test model answered",
            kind=pb_utils.MetricFamily.COUNTER)
        self.ok = self.requests.Metric(labels={"model": name, "kind": "ok"})
        self.rows = pb_utils.MetricFamily(
            name="test_rows_in_flight", description="Rows of the last request",
            kind=pb_utils.MetricFamily.GAUGE).Metric(labels={"model": name})
        self.hist = pb_utils.MetricFamily(
            name="test_observed_values", description="X values seen",
            kind=pb_utils.MetricFamily.HISTOGRAM).Metric(
                labels={"model": name}, buckets=[0.5, 1.0, 2.0])

    def errors(self):
        out = []

        def attempt(fn):
            try:
                fn()
                out.append("no error")
            except pb_utils.TritonModelException as e:
                out.append(str(e))

        attempt(lambda: self.ok.increment(-1))
        attempt(lambda: self.ok.set(3))
        attempt(lambda: self.hist.value())
        attempt(lambda: pb_utils.MetricFamily("bad name!", "x", pb_utils.MetricFamily.GAUGE))
        attempt(lambda: pb_utils.MetricFamily("test_requests_total", "x",
                                              pb_utils.MetricFamily.GAUGE))
        attempt(lambda: pb_utils.MetricFamily("torii_mine", "x", pb_utils.MetricFamily.GAUGE))
        attempt(lambda: self.requests.Metric(labels={"bad-label": "v"}))
        attempt(lambda: self.requests.Metric(labels="model"))
        attempt(lambda: self.requests.Metric(labels={}, buckets=[1.0]))
        return out

    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "X").as_numpy()
            errors = []
            if x.size > 0 and x[0] < 0:
                errors = self.errors()
            else:
                self.ok.increment(1)
                self.rows.set(float(x.shape[0]))
                for v in x:
                    self.hist.observe(float(v))
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("Y", np.array(x, dtype=np.float32)),
                pb_utils.Tensor("COUNT", np.array([self.ok.value()], dtype=np.float64)),
                pb_utils.Tensor("ERRORS", np.array([e.encode() for e in errors] or [b""],
                                                   dtype=object)),
            ]))
        return responses
