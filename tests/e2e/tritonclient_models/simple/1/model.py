import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    @staticmethod
    def auto_complete_config(config):
        # A load override may bring a config without tensors (the model
        # control example sends {"max_batch_size": "16"} only).
        d = config.as_dict()
        for kind, names, add in (("input", ("INPUT0", "INPUT1"), config.add_input),
                                 ("output", ("OUTPUT0", "OUTPUT1"), config.add_output)):
            have = {t["name"] for t in d.get(kind, [])}
            for name in names:
                if name not in have:
                    add({"name": name, "data_type": "TYPE_INT32", "dims": [16]})
        return config

    def execute(self, requests):
        out = []
        for request in requests:
            a = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            b = pb_utils.get_input_tensor_by_name(request, "INPUT1").as_numpy()
            out.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("OUTPUT0", a + b), pb_utils.Tensor("OUTPUT1", a - b)]))
        return out
