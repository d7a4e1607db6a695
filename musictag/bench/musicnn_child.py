"""Run by ``musictag bench --musicnn-python PYTHON`` with that Python (a venv with the musicnn library and
its TensorFlow; never imported by musictag): ``PYTHON musicnn_child.py MODEL FILE THREADS``.

Prints ``ready`` once the library is imported, then for each line read on stdin the seconds of one
``musicnn.extractor.extractor(FILE, MODEL)`` call (3-s patches, no overlap: the library's defaults) as
``seconds S``. Standard library and musicnn only.
"""

import sys
import time


def main() -> None:
    model, audio, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    answer, sys.stdout = sys.stdout, sys.stderr  # the library prints its progress: keep it off the answers
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from musicnn.extractor import extractor

    print("ready", file=answer, flush=True)
    for _ in sys.stdin:
        start = time.perf_counter()
        extractor(audio, model=model, input_length=3, input_overlap=False, extract_features=False)
        print(f"seconds {time.perf_counter() - start:.6f}", file=answer, flush=True)


if __name__ == "__main__":
    main()
