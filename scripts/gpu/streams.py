"""Many cameras on one GPU (issue 28, item 5): faces per second when STREAMS streams each
hand in one face at a time, three ways, as the plugin can run them:

  one stream       one session, batch 1 (a single camera)
  own sessions     STREAMS sessions, one thread each, batch 1 (share-sessions=false, or
                   one process per camera)
  shared session   one session, the STREAMS faces that are ready together in one batch
                   (share-sessions=true: model::shared batches the streams' requests)

On a GPU the batch is what should make many cameras scale: the own-sessions row pays a
launch per face and contends for the device. Runs on the GPU machine (scripts/gpu-check.sh
device); `--cpu` runs it on the CPU provider, to check the script itself anywhere.
Prints a markdown table.

Usage: python3 streams.py [--cpu] STREAMS SECONDS MODEL.onnx...
"""
import sys
import threading
import time

import numpy as np
import onnxruntime as ort


def rate(sessions, batch, seconds):
    """Faces per second over all `sessions`, each run in its own thread at `batch`."""
    counts = [0] * len(sessions)
    stop = time.perf_counter() + seconds

    def worker(k, s):
        name = s.get_inputs()[0].name
        shape = s.get_inputs()[0].shape
        size = shape[2] if isinstance(shape[2], int) else 512
        feeds = {name: np.random.default_rng(k).random((batch, 3, size, size), np.float32)}
        for _ in range(3):
            s.run(None, feeds)
        while time.perf_counter() < stop:
            s.run(None, feeds)
            counts[k] += batch

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k, s)) for k, s in enumerate(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - t0)


def main():
    args = sys.argv[1:]
    cpu = args[:1] == ["--cpu"]
    args = args[1:] if cpu else args
    streams, seconds, models = int(args[0]), float(args[1]), args[2:]
    providers = ["CPUExecutionProvider"] if cpu else [("CUDAExecutionProvider", {}), "CPUExecutionProvider"]
    print(f"{streams} streams, each handing in one face at a time, {seconds:.0f} s per row")
    print()
    print("| model | ran on | one stream, faces/s | own sessions, faces/s | shared session (batch "
          f"{streams}), faces/s | shared / own |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for path in models:
        name = path.rsplit("/", 1)[-1].removesuffix(".onnx")
        try:
            own = [ort.InferenceSession(path, providers=providers) for _ in range(streams)]
        except Exception as e:  # noqa: BLE001 - the reason is the result
            print(f"| {name} | failed | - | - | - | {str(e).splitlines()[0][:160]} |")
            continue
        ran = own[0].get_providers()[0]
        one = rate(own[:1], 1, seconds)
        many = rate(own, 1, seconds)
        shared = rate(own[:1], streams, seconds)
        print(f"| {name} | {ran} | {one:.0f} | {many:.0f} | {shared:.0f} | {shared / many:.2f} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
