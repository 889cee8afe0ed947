"""Faces per second of ONNX face models through ONNX Runtime's GPU providers, one provider
registered at a time so the one that ran and the reason another could not are both known.
Runs on the GPU machine (scripts/gpu-check.sh device); prints a markdown table.

Usage: python3 speed.py RUNS MODEL.onnx...
"""
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper


def half(path):
    """The model with fp16 weights and compute, fp32 at its input and output (Casts)."""
    m = onnx.load(path)
    g = m.graph
    for init in g.initializer:
        if init.data_type == onnx.TensorProto.FLOAT:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name))
    for node in g.node:
        for a in node.attribute:
            if a.name == "value" and a.t.data_type == onnx.TensorProto.FLOAT:
                a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float16)))
            if node.op_type == "Cast" and a.name == "to" and a.i == onnx.TensorProto.FLOAT:
                a.i = onnx.TensorProto.FLOAT16
    inp, out = g.input[0].name, g.output[0].name
    for node in g.node:
        node.input[:] = [f"{inp}_h" if i == inp else i for i in node.input]
        node.output[:] = [f"{out}_h" if o == out else o for o in node.output]
    g.node.insert(0, onnx.helper.make_node("Cast", [inp], [f"{inp}_h"], to=onnx.TensorProto.FLOAT16))
    g.node.append(onnx.helper.make_node("Cast", [f"{out}_h"], [out], to=onnx.TensorProto.FLOAT))
    for vi in list(g.value_info):
        g.value_info.remove(vi)
    return m.SerializeToString()


CHAINS = {
    "cuda": [("CUDAExecutionProvider", {})],
    "cuda fp16": [("CUDAExecutionProvider", {})],
    "tensorrt fp16": [("TensorrtExecutionProvider", {"trt_fp16_enable": True}), ("CUDAExecutionProvider", {})],
}


def main():
    runs = int(sys.argv[1])
    print(f"onnxruntime {ort.__version__}, available: {', '.join(ort.get_available_providers())}")
    print()
    print("| model | asked | ran on | batch | ms per batch | faces/s | why not the first |")
    print("| --- | --- | --- | ---: | ---: | ---: | --- |")
    for path in sys.argv[2:]:
        name = path.rsplit("/", 1)[-1].removesuffix(".onnx")
        for asked, chain in CHAINS.items():
            model = half(path) if asked == "cuda fp16" else path
            why = "-"
            try:
                s = ort.InferenceSession(model, providers=chain)
            except Exception as e:  # noqa: BLE001 - the reason is the result
                print(f"| {name} | {asked} | failed | - | - | - | {str(e).splitlines()[0][:160]} |")
                continue
            ran = s.get_providers()[0]
            if ran != chain[0][0]:
                why = f"{chain[0][0]} did not register"
            shape = s.get_inputs()[0].shape
            size = shape[2] if isinstance(shape[2], int) else 512
            for batch in (1, 8):
                x = np.zeros((batch, 3, size, size), np.float32)
                feeds = {s.get_inputs()[0].name: x}
                for _ in range(3):
                    s.run(None, feeds)
                t = time.perf_counter()
                for _ in range(runs):
                    s.run(None, feeds)
                ms = (time.perf_counter() - t) * 1e3 / runs
                print(f"| {name} | {asked} | {ran} | {batch} | {ms:.2f} | {batch * 1e3 / ms:.0f} | {why} |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
